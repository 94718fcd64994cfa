"""Supervised fine-tuning (and the tiny world's pre-training) through TRL's SFTTrainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.ledger import resumed_tokens
from r1kit.models import count_parameters
from r1kit.train.common import MetricsLog, last_checkpoint, quiet_progress
from r1kit.train.config import trainer_config


def train_sft(model, tokenizer, dataset, *, output_dir: Path, train: dict[str, Any], seed: int = 0,
              completion_only: bool = True, metrics_path: Path | None = None, on_log: Any = None):
    """Train on a prompt–completion dataset (completion-only loss unless told otherwise),
    resuming from the newest checkpoint in `output_dir` if an earlier attempt left one."""
    from trl import SFTTrainer

    args = trainer_config("sft", train, output_dir=output_dir, seed=seed, completion_only=completion_only,
                          parameters=count_parameters(model))
    callbacks = [MetricsLog(metrics_path or Path(output_dir) / "metrics.jsonl", on_log)]
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks)
    quiet_progress(trainer)
    resume = last_checkpoint(output_dir)
    # TRL's SFT token count is not in its checkpoints and restarts at 0: continue it (a private field).
    trainer._total_train_tokens = resumed_tokens(resume)
    trainer.train(resume_from_checkpoint=resume)
    return trainer
