"""Logit-level distillation through TRL's DistillationTrainer: the student writes its own
completions (on-policy) and learns the teacher's next-token distribution on them. The teacher
must share the student's tokenizer. (Sequence-level distillation is plain SFT on verified
teacher traces: `train_sft`.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.models import count_parameters
from r1kit.train.common import MetricsLog, base_args, last_checkpoint, quiet_progress

DISTILL_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "lr_scheduler_type": "constant_with_warmup",
    "warmup_steps": 0,
    "per_device_train_batch_size": 32,
    "max_completion_length": 64,
    "temperature": 1.0,
    "beta": 0.5,  # generalized JSD between forward (0) and reverse (1) KL
    "logging_steps": 5,
    "save_steps": 50,
}


def distill_config(output_dir: Path, train: dict[str, Any], *, seed: int = 0, parameters: int | None = None):
    from trl import DistillationConfig

    return DistillationConfig(**{**base_args(output_dir, seed, parameters), **DISTILL_DEFAULTS, **train})


def train_logit_distill(model, teacher, tokenizer, dataset, *, output_dir: Path, train: dict[str, Any], seed: int = 0,
                        metrics_path: Path | None = None, on_log: Any = None, callbacks: list | None = None):
    """`dataset` holds `prompt` rows; `teacher` is a model object sharing `tokenizer`."""
    from trl import DistillationTrainer

    args = distill_config(output_dir, train, seed=seed, parameters=count_parameters(model))
    log = MetricsLog(metrics_path or Path(output_dir) / "metrics.jsonl", on_log)
    trainer = DistillationTrainer(model=model, teacher_model=teacher, args=args, train_dataset=dataset,
                                  processing_class=tokenizer, callbacks=[log, *(callbacks or [])])
    quiet_progress(trainer)
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir))
    return trainer
