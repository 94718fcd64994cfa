"""One path from a stage's `train:` mapping to its TRL config (SFTConfig, GRPOConfig or
DistillationConfig): r1kit's defaults merged once, then each value checked against the config's own
field types and by TRL's own `__post_init__`. The recipe builds it at validation, so a wrong value
fails before any work; the trainers build it again with the real output directory and model size."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from r1kit.errors import R1kitError, suggest
from r1kit.train.common import device_defaults

COMMON: dict[str, Any] = {
    "report_to": [], "save_strategy": "steps", "dataloader_num_workers": 0,
    "save_total_limit": 2,  # a damaged newest checkpoint falls back to the one before
    "disable_tqdm": False,  # transformers turns the bar off when its logging is quiet, which r1kit makes it
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "sft": {"learning_rate": 1e-3, "lr_scheduler_type": "cosine", "weight_decay": 0.0, "num_train_epochs": 1,
            "warmup_steps": 0.05,  # a float below 1 is a ratio of the total steps
            "per_device_train_batch_size": 64, "max_length": 512, "logging_steps": 10, "save_steps": 100},
    "grpo": {"learning_rate": 2e-5,  # small: Adam moves each weight ~lr a step on a noisy gradient (benchmarks/)
             "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 0, "per_device_train_batch_size": 64,
             "num_generations": 8, "max_completion_length": 96, "temperature": 1.0, "beta": 0.0,
             "logging_steps": 5, "save_steps": 50},
    "distill": {"learning_rate": 1e-3, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 0,
                "per_device_train_batch_size": 32, "max_completion_length": 64, "temperature": 1.0,
                "beta": 0.5,  # generalized JSD between forward (0) and reverse (1) KL
                "logging_steps": 5, "save_steps": 50},
}
# Values TRL accepts but cannot train with.
BOUNDS = {"learning_rate": (lambda v: v > 0, "must be positive"),
          "per_device_train_batch_size": (lambda v: v >= 1, "must be at least 1"),
          "max_steps": (lambda v: v >= 1 or v == -1, "must be at least 1")}


def config_class(kind: str) -> type:
    """sft: SFTConfig (pretraining and sequence distillation too); distill: on-policy logit distillation."""
    from trl import DistillationConfig, GRPOConfig, SFTConfig

    return {"sft": SFTConfig, "grpo": GRPOConfig, "distill": DistillationConfig}[kind]


def trainer_config(kind: str, train: Mapping[str, Any], *, output_dir: str | Path, seed: int = 0,
                   parameters: int | None = None, completion_only: bool = True,
                   reward_weights: list[float] | None = None, budgeted: bool = False, processes: int = 1,
                   where: str = "train"):
    """The TRL config of a `kind` trainer: r1kit's defaults (for a model of `parameters`) under
    `train`; or one R1kitError naming `where`. `budgeted`: a FLOPs budget on a generating trainer,
    checked on the token count TRL logs, so it logs every step. `processes`: how many more processes
    will train than this one sees (a check before a launch): TRL's batch arithmetic, such as GRPO's
    whole prompt groups in a generation batch, is then done on their global batch."""
    config_cls = config_class(kind)
    _check_values(config_cls, train, where)
    args = {"output_dir": str(output_dir), "seed": seed, **COMMON, **device_defaults(parameters), **DEFAULTS[kind],
            **({"completion_only_loss": completion_only} if kind == "sft" else {}),
            **({"reward_weights": reward_weights} if reward_weights is not None else {}),
            **({"logging_steps": 1} if budgeted else {}), **train}
    if args.get("use_vllm"):  # TRL's rollouts through vLLM (colocate, or a `trl vllm-serve` server)
        from r1kit.engines import require_vllm

        require_vllm(f"{where}.use_vllm")
    if processes > 1:
        args["per_device_train_batch_size"] *= processes
        where = f"{where} (x {processes} processes)"
    try:
        return config_cls(**args)
    except (ValueError, TypeError) as error:
        raise R1kitError(f"{where}: {error}") from None


def _check_values(config_cls: type, train: Mapping[str, Any], where: str) -> None:
    """Every key a field of the config, every value of its field's type (TRL itself checks neither)."""
    types = _field_types(config_cls)
    for key, value in train.items():
        if key not in types:
            raise R1kitError(f"unknown key '{where}.{key}' (not a {config_cls.__name__} field){suggest(key, types)}")
        try:
            if value is not None:
                types[key].validate_python(value, strict=True)
        except ValidationError as error:
            raise R1kitError(f"{where}.{key}: {error.errors()[0]['msg'].lower()}, got {value!r}") from None
        if key in BOUNDS and value is not None and not BOUNDS[key][0](value):
            raise R1kitError(f"{where}.{key} {BOUNDS[key][1]}, got {value!r}")


@functools.cache
def _field_types(config_cls: type) -> dict[str, TypeAdapter]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: TypeAdapter(hints[f.name]) for f in dataclasses.fields(config_cls) if f.init}
