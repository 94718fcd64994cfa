"""Which precision a CPU should compute in: bf16 where the CPU has it natively and the model is
large enough to gain from it, fp32 otherwise. Training (autocast) and evaluation (bf16 weights)
ask the same question here."""

from __future__ import annotations

import functools
from pathlib import Path


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


# bf16 pays for SmolLM2-135M and costs for tiny-1m (benchmarks/bench_precision.py); the cut between is a judgement.
CPU_BF16_MIN_PARAMETERS = 50_000_000


def cpu_bf16_pays(parameters: int | None) -> bool:
    """bf16 on this CPU for a model of `parameters` (unknown counts as small: fp32)."""
    return parameters is not None and parameters >= CPU_BF16_MIN_PARAMETERS and cpu_bf16_supported()
