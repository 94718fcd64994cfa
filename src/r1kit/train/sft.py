"""Supervised fine-tuning (and the tiny world's pre-training) through TRL's SFTTrainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.models import count_parameters
from r1kit.train.common import MetricsLog, base_args, last_checkpoint, quiet_progress, resumed_tokens

SFT_DEFAULTS: dict[str, Any] = {
    "max_length": 512,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,  # a float below 1 is a ratio of the total steps
    "weight_decay": 0.0,
    "per_device_train_batch_size": 64,
    "num_train_epochs": 1,
}


def sft_config(output_dir: Path, train: dict[str, Any], *, seed: int = 0, completion_only: bool = True,
               parameters: int | None = None):
    """`SFTConfig` from r1kit defaults (for a model of `parameters`) overridden by the recipe's `train:` mapping."""
    from trl import SFTConfig

    args = {**base_args(output_dir, seed, parameters), **SFT_DEFAULTS, "completion_only_loss": completion_only, **train}
    return SFTConfig(**args)


def train_sft(model, tokenizer, dataset, *, output_dir: Path, train: dict[str, Any], seed: int = 0,
              completion_only: bool = True, metrics_path: Path | None = None, on_log: Any = None,
              peft_config: Any = None):
    """Train on a prompt–completion dataset (completion-only loss unless told otherwise),
    resuming from the newest checkpoint in `output_dir` if an earlier attempt left one."""
    from trl import SFTTrainer

    args = sft_config(output_dir, train, seed=seed, completion_only=completion_only, parameters=count_parameters(model))
    callbacks = [MetricsLog(metrics_path or Path(output_dir) / "metrics.jsonl", on_log)]
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=callbacks, peft_config=peft_config)
    quiet_progress(trainer)
    resume = last_checkpoint(output_dir)
    # TRL's SFT token count is not in its checkpoints and restarts at 0: continue it (a private field).
    trainer._total_train_tokens = resumed_tokens(resume)
    trainer.train(resume_from_checkpoint=resume)
    return trainer
