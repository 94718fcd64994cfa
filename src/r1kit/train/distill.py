"""Logit-level distillation through TRL's DistillationTrainer: the student writes its own
completions (on-policy) and learns the teacher's next-token distribution on them. The teacher
must share the student's tokenizer. (Sequence-level distillation is plain SFT on verified
teacher traces: `train_sft`.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.models import count_parameters
from r1kit.train.common import MetricsLog, last_checkpoint, quiet_progress
from r1kit.train.config import trainer_config


def train_logit_distill(model, teacher, tokenizer, dataset, *, output_dir: Path, train: dict[str, Any], seed: int = 0,
                        metrics_path: Path | None = None, on_log: Any = None, callbacks: list | None = None,
                        budgeted: bool = False):
    """`dataset` holds `prompt` rows; `teacher` is a model object sharing `tokenizer`."""
    from trl import DistillationTrainer

    args = trainer_config("distill", train, output_dir=output_dir, seed=seed, parameters=count_parameters(model),
                          budgeted=budgeted)
    log = MetricsLog(metrics_path or Path(output_dir) / "metrics.jsonl", on_log)
    trainer = DistillationTrainer(model=model, teacher_model=teacher, args=args, train_dataset=dataset,
                                  processing_class=tokenizer, callbacks=[log, *(callbacks or [])])
    quiet_progress(trainer)
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir))
    return trainer
