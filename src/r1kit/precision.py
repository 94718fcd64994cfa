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


# bf16 on a CPU with native bf16 pays off only past some size. benchmarks/bench_precision.py on this
# 2-core AVX512-BF16 CPU, alone: SmolLM2-135M training 1.62x the fp32 tokens/s (batch 8 x 200) and
# generation 1.84x (autocast) / 1.87x (bf16 weights); tiny-1m 0.92x training and 0.70x / 0.84x
# generation. Between 1M and 135M the cut is a judgement, not a measurement.
CPU_BF16_MIN_PARAMETERS = 50_000_000


def cpu_bf16_pays(parameters: int | None) -> bool:
    """bf16 on this CPU for a model of `parameters` (unknown counts as small: fp32)."""
    return parameters is not None and parameters >= CPU_BF16_MIN_PARAMETERS and cpu_bf16_supported()
