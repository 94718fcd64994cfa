"""What the SFT and GRPO wrappers share: device defaults, metrics logging, checkpoints."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from r1kit.files import write_text


@functools.cache
def cpu_bf16_supported() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), not just emulates it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    import torch  # no /proc/cpuinfo (not Linux): torch's own dispatch level

    return any(k in torch.backends.cpu.get_cpu_capability().upper() for k in ("AMX", "BF16"))


# bf16 autocast on a CPU with native bf16 pays off only past some size. benchmarks/bench_precision.py on
# a 2-core AMX-BF16 CPU (shared, so noisy): SmolLM2-135M SFT steps (8 x 200 tokens) 6.1 s / 4.4 s in bf16
# against 9.2 s / 24.4 s in fp32, the same loss descent; tiny-1m 0.85x in bf16 (13.4k vs 11.4k tok/s).
# Between 1M and 135M the cut is a judgement, not a measurement.
CPU_BF16_MIN_PARAMETERS = 50_000_000


def device_defaults(parameters: int | None = None) -> dict[str, Any]:
    """CPU: no gradient checkpointing (it costs ~20% for nothing on small models); bf16 autocast
    where the CPU computes bf16 natively and the model has at least CPU_BF16_MIN_PARAMETERS
    (`parameters`, when known; unknown counts as small, so fp32 as before).
    CUDA: bf16 where the GPU has it, TF32 matmuls.
    A stage's `train:` is merged over these, so `bf16: false` (or true) there always wins."""
    import torch

    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        return {"use_cpu": False, "bf16": bf16, "fp16": not bf16, "tf32": torch.cuda.get_device_capability()[0] >= 8}
    bf16 = parameters is not None and parameters >= CPU_BF16_MIN_PARAMETERS and cpu_bf16_supported()
    return {"use_cpu": True, "bf16": bf16, "fp16": False, "gradient_checkpointing": False,
            "dataloader_pin_memory": False}


def base_args(output_dir: Path, seed: int, parameters: int | None = None) -> dict[str, Any]:
    return {
        "output_dir": str(output_dir),
        "seed": seed,
        "report_to": [],
        "logging_steps": 10,
        "save_strategy": "steps",
        "save_steps": 100,
        "save_total_limit": 1,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,  # transformers turns the bar off when its logging is quiet, which r1kit makes it
        **device_defaults(parameters),
    }


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete `checkpoint-N` directory, if an earlier attempt left one."""
    from transformers.trainer_utils import get_last_checkpoint

    if not Path(output_dir).is_dir():
        return None
    found = get_last_checkpoint(str(output_dir))
    return found if found and (Path(found) / "trainer_state.json").is_file() else None


class MetricsLog(TrainerCallback):
    """Appends every log event as a JSON line; on resume it first drops lines past the
    checkpoint's step, so each step appears once however often the run was interrupted."""

    def __init__(self, path: Path, on_log: Any = None):
        self.path = Path(path)
        self.on_log_hook = on_log
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

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float, str))}}
        self.last = row
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.on_log_hook is not None:
            self.on_log_hook(row)


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
