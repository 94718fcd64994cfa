"""What the SFT and GRPO wrappers share: device defaults, metrics logging, checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from r1kit.files import write_text
from r1kit.precision import cpu_bf16_pays


def device_defaults(parameters: int | None = None) -> dict[str, Any]:
    """CPU: no gradient checkpointing (it costs ~20% for nothing on small models); bf16 autocast
    where the CPU computes bf16 natively and the model is large enough (`r1kit.precision`).
    CUDA: bf16 where the GPU has it, TF32 matmuls.
    A stage's `train:` is merged over these, so `bf16: false` (or true) there always wins."""
    import torch

    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        return {"use_cpu": False, "bf16": bf16, "fp16": not bf16, "tf32": torch.cuda.get_device_capability()[0] >= 8}
    bf16 = cpu_bf16_pays(parameters)
    return {"use_cpu": True, "bf16": bf16, "fp16": False, "gradient_checkpointing": False,
            "dataloader_pin_memory": False}


def last_checkpoint(output_dir: Path, say: Any = print) -> str | None:
    """The newest sound `checkpoint-N` directory an earlier attempt left, if any. A damaged one
    (a kill or a full disk mid-save, a corrupted file) is moved aside to `.damaged/` with one line
    saying why, and the one before it is used: two are kept (`save_total_limit: 2`)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted((p for p in output_dir.iterdir() if p.is_dir() and p.name.startswith(f"{PREFIX_CHECKPOINT_DIR}-")
                    and p.name.rpartition("-")[2].isdigit()), key=lambda p: int(p.name.rpartition("-")[2]), reverse=True)
    for checkpoint in found:
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return str(checkpoint)
        aside = output_dir / ".damaged" / checkpoint.name
        shutil.rmtree(aside, ignore_errors=True)
        aside.parent.mkdir(exist_ok=True)
        os.replace(checkpoint, aside)
        say(f"warning: {checkpoint.name} is damaged ({problem}); moved to {aside}, "
            + ("resuming from the one before" if checkpoint is not found[-1] else "the stage starts over from step 0"))
    return None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from, or None: every file TRL reads back must be whole."""
    state = checkpoint / "trainer_state.json"
    try:
        if not isinstance(json.loads(state.read_text()).get("global_step"), int):
            return f"{state.name} has no global_step"
    except (OSError, ValueError) as error:
        return f"{state.name}: {type(error).__name__}"
    weights = sorted(checkpoint.glob("*.safetensors"))
    if not weights and not any(checkpoint.glob("*.bin")):
        return "no model weights"
    for file in weights:
        try:
            _check_size(file)
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{file.name}: {str(error)[:80] or type(error).__name__}"
    for file in (p for p in checkpoint.iterdir() if p.suffix in (".pt", ".pth", ".bin")):
        try:
            with zipfile.ZipFile(file) as archive:  # torch.save writes a zip archive; CRCs catch corruption
                bad = archive.testzip()
            if bad is not None:
                return f"{file.name}: member {bad} is corrupted"
        except (OSError, zipfile.BadZipFile) as error:
            return f"{file.name}: {error}"
    return None


def _check_size(file: Path) -> None:
    """A safetensors file is an 8-byte header length, the JSON header, then exactly the data its offsets cover."""
    with file.open("rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if file.stat().st_size != 8 + length + end:
        raise ValueError(f"{file.stat().st_size} bytes, its header describes {8 + length + end}")


class MetricsLog(TrainerCallback):
    """Appends every log event as a JSON line; on resume it first drops lines past the
    checkpoint's step, so each step appears once however often the run was interrupted."""

    def __init__(self, path: Path, on_log: Any = None):
        self.path = Path(path)
        self.on_log_hook = on_log  # a `ledger.TokenMeter` (or any callable of a log row)
        self.last: dict[str, Any] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if row.get("step", 0) <= state.global_step:
                    kept.append(json.dumps(row))
        write_text(self.path, "".join(line + "\n" for line in kept))
        if state.global_step and hasattr(self.on_log_hook, "resumed"):
            self.on_log_hook.resumed(checkpoint_dir(args, state))

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero and hasattr(self.on_log_hook, "saved"):
            self.on_log_hook.saved(checkpoint_dir(args, state))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float, str))}}
        if "train_loss" in row:  # the Trainer's own averages only this attempt's steps: all of them instead
            row["train_loss"] = mean_logged_loss(self.path, fallback=row["train_loss"])
        self.last = row
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.on_log_hook is not None:
            self.on_log_hook(row)


def checkpoint_dir(args, state) -> Path:
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    return Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"


def mean_logged_loss(path: Path, fallback: float) -> float:
    """The mean training loss over every step logged in `path` (continuous across resumes): each
    logged loss is the mean since the previous log, so it weighs as many steps as it covers."""
    total = steps = previous = 0
    for row in read_metrics(path):
        if "loss" in row and "step" in row:
            total += row["loss"] * (row["step"] - previous)
            steps += row["step"] - previous
            previous = row["step"]
    return total / steps if steps else fallback


class QuietProgress(ProgressCallback):
    """The step progress bar, with the latest loss/reward in its postfix instead of a printed
    dict every `logging_steps` (the full logs go to metrics.jsonl)."""

    KEYS = ("loss", "reward", "learning_rate")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            shown = {k: f"{logs[k]:.4g}" for k in self.KEYS if isinstance(logs.get(k), (int, float))}
            if shown:
                self.training_bar.set_postfix(shown, refresh=False)


def quiet_progress(trainer) -> None:
    """One progress bar, no printed log dicts (the logs are in metrics.jsonl)."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if not trainer.args.disable_tqdm:
        trainer.add_callback(QuietProgress)


def console_line(line: str) -> None:
    """One line for the person watching, above the progress bar rather than through it."""
    from tqdm.auto import tqdm

    tqdm.write(line)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
