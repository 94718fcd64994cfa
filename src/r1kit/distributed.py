"""Several processes, one run directory: launching under `accelerate launch`, and rank-safe writes.

The training itself is distributed by accelerate (DDP), DeepSpeed (ZeRO) or FSDP inside TRL's
trainers. r1kit does two things only:

- `launch_command` re-executes `r1kit run ...` under `accelerate launch` with a shipped config
  (`src/r1kit/accelerate/*.yaml`) or the user's own;
- rank 0 writes every shared artifact (manifest, stage data, done markers, models, eval outputs,
  results, report); the other ranks wait at a barrier and then read what it wrote. Each rank
  meters its own cost in the ledger.

In a single process every helper here is a no-op, so the same code path serves both.
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from datetime import timedelta
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator

from r1kit.errors import R1kitError
from r1kit.files import publish

# Rank 0 alone evaluates and reports while the others wait at a barrier: allow that much time
# (collectives time out after 30 minutes by default, shorter than a real model's evaluation).
BARRIER_TIMEOUT_S = int(os.environ.get("R1KIT_BARRIER_TIMEOUT_S", 6 * 3600))


def configs_dir() -> Path:
    return Path(str(files("r1kit") / "accelerate"))


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


# ---------------------------------------------------------------- launching


def resolve_config(name_or_path: str) -> Path:
    """A shipped config by name (`ddp`, `zero2`, `zero3`, `fsdp`, `cpu`) or a YAML file."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = configs_dir() / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    raise R1kitError(f"no accelerate config {name_or_path!r}: pass a YAML file (see `accelerate config`) "
                     f"or one of the shipped configs: {', '.join(shipped_configs())}")


def default_config() -> str:
    import torch

    return "ddp" if torch.cuda.is_available() else "cpu"


def launch_command(args: list[str], *, num_processes: int | None = None, config: str | None = None) -> list[str]:
    """`python -m accelerate.commands.launch [--config_file ...] [--num_processes N] -m r1kit ARGS`."""
    if find_spec("accelerate") is None:
        raise R1kitError("--launcher accelerate needs accelerate: pip install accelerate")
    if num_processes is not None and num_processes < 1:
        raise R1kitError(f"--num-processes must be at least 1, got {num_processes}")
    path = resolve_config(config or default_config())
    _check_backend(path)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path)]
    if num_processes is not None:
        command += ["--num_processes", str(num_processes)]
    return [*command, "-m", "r1kit", *args]


def _check_backend(config: Path) -> None:
    import yaml

    try:
        kind = (yaml.safe_load(config.read_text()) or {}).get("distributed_type")
    except (OSError, yaml.YAMLError, AttributeError) as error:
        raise R1kitError(f"cannot read the accelerate config {config}: {error}") from None
    if kind == "DEEPSPEED" and find_spec("deepspeed") is None:
        raise R1kitError(f"{config.name} uses DeepSpeed, which is not installed: pip install deepspeed")


def launched() -> bool:
    """True inside a process started by `accelerate launch` (any launcher) or torchrun."""
    return "LOCAL_RANK" in os.environ or "ACCELERATE_MIXED_PRECISION" in os.environ


def relaunch(args: list[str], *, num_processes: int | None, config: str | None) -> int:
    import subprocess

    return subprocess.call(launch_command(args, num_processes=num_processes, config=config))


# ---------------------------------------------------------------- ranks


def state():
    """accelerate's process state, set up for CPU (gloo) when there is no GPU, as TRL's
    trainers will set it up themselves (`use_cpu=True`); idempotent once initialised."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(seconds=BARRIER_TIMEOUT_S))


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main() -> bool:
    return state().is_main_process if _distributed() else True


def rank() -> int:
    return state().process_index if _distributed() else 0


def world_size() -> int:
    return state().num_processes if _distributed() else 1


def device():
    """This process's device: its own GPU under a launcher, else CUDA if present, else CPU."""
    return state().device


def barrier() -> None:
    if _distributed():
        state().wait_for_everyone()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds and saves a dataset); the others run it after,
    and find its result on disk."""
    if not _distributed():
        yield
        return
    with state().main_process_first():
        yield


def broadcast(value: Any) -> Any:
    """Rank 0's value, on every rank (a small picklable object)."""
    if not _distributed():
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


# ---------------------------------------------------------------- saving a trained model


def sharded(trainer) -> bool:
    """ZeRO-3 and FSDP keep the weights in pieces across ranks: saving is a collective."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    if getattr(trainer, "is_deepspeed_enabled", False):
        plugin = trainer.accelerator.state.deepspeed_plugin
        return plugin is not None and plugin.zero_stage == 3
    return False


def save_trained(trainer, tokenizer, out: str | Path, *, prompt_info: dict) -> Path:
    """The trained model in `out` (weights, tokenizer, r1kit.json), written once, atomically.

    Unsharded (1 process, DDP, ZeRO-1/2): rank 0 saves `trainer.model` with r1kit's
    `save_model` (which also merges LoRA). Sharded (ZeRO-3, FSDP): every rank calls
    `trainer.save_model`, which gathers the full weights and writes them on rank 0; rank 0 then
    adds the tokenizer and r1kit.json and renames the directory into place.
    """
    from r1kit.models import save_model
    from r1kit.prompting import write_prompt_info

    out = Path(out)
    if not sharded(trainer):
        if is_main():
            save_model(trainer.model, tokenizer, out, prompt_info=prompt_info)
        barrier()
        return out
    staging = out.parent / f".{out.name}.gathered"  # the same name on every rank
    if is_main():
        shutil.rmtree(staging, ignore_errors=True)
    barrier()
    trainer.save_model(str(staging))
    if is_main():
        tokenizer.save_pretrained(staging)
        write_prompt_info(staging, prompt_info)
        publish(staging, out)
    barrier()
    return out
