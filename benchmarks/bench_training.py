"""Training throughput of r1kit's defaults vs TRL's default configuration, side by side in one
run, on the same tiny model and the same data:

- SFT tokens/s and model-FLOPs utilisation (6·N·tokens/s over the measured fp32 matmul peak);
- GRPO steps/s.

    python benchmarks/bench_training.py [--preset tiny-1m] [--sft-steps 30] [--grpo-steps 6]

"TRL default" sets only what any run must (output dir, steps, batch size, learning rate,
`use_cpu` on a CPU machine); everything else is TRL's default (gradient checkpointing on,
bf16 on, a 512-token completion budget for GRPO). r1kit's side is exactly what its stages use.
"""

import argparse
import tempfile
import time
import warnings

import torch
from transformers import TrainerCallback

from r1kit import data, rewards
from r1kit.models import build_char_tokenizer, build_tiny_model, count_parameters
from r1kit.train.config import trainer_config


class StepClock(TrainerCallback):
    """Wall time of the steps after a warm-up, and the tokens they processed."""

    def __init__(self, warmup: int = 3):
        self.warmup, self.start, self.tokens0 = warmup, None, 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.start
        self.steps = state.global_step - self.warmup


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best


def fresh_accelerator() -> None:
    """Accelerate keeps one global state per process; the two configurations differ in mixed
    precision, so reset it between runs (as accelerate's own tests do)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def sft_run(preset, dataset, tokenizer, config, steps):
    from trl import SFTTrainer

    fresh_accelerator()
    tokens = []

    class Tokens(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            tokens.append(trainer._total_train_tokens)

    clock = StepClock()
    model = build_tiny_model(preset, tokenizer)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[clock, Tokens()])
    trainer.train()
    counted = trainer._total_train_tokens - tokens[clock.warmup]
    return counted / clock.seconds, count_parameters(model)


def grpo_run(preset, dataset, tokenizer, config):
    from trl import GRPOTrainer

    fresh_accelerator()
    clock = StepClock(warmup=1)
    functions, _ = rewards.build({"accuracy": 1.0, "steps": 0.5})
    trainer = GRPOTrainer(model=build_tiny_model(preset, tokenizer), reward_funcs=functions, args=config,
                          train_dataset=dataset, processing_class=tokenizer, callbacks=[clock])
    trainer.train()
    return clock.steps / clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny-1m")
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    import datasets

    datasets.disable_progress_bars()
    from trl import GRPOConfig, SFTConfig

    tokenizer = build_char_tokenizer()
    sft_data = data.build("arithmetic", [1, 2, 3], args.batch * (args.sft_steps + 2), style="compact")["train"]
    grpo_data = data.build("arithmetic", [2, 3], 400, style="compact")["train"].remove_columns(["completion"])
    quiet = {"max_steps": args.sft_steps, "per_device_train_batch_size": args.batch, "save_strategy": "no",
             "disable_tqdm": True, "logging_steps": 1000, "report_to": []}
    cpu = {"use_cpu": True} if not torch.cuda.is_available() else {}

    ours_sft = trainer_config("sft", quiet, output_dir=tempfile.mkdtemp())
    trl_sft = SFTConfig(output_dir=tempfile.mkdtemp(), learning_rate=1e-3, **quiet, **cpu)
    grpo_common = {"max_steps": args.grpo_steps, "per_device_train_batch_size": args.batch, "num_generations": 8,
                   "save_strategy": "no", "disable_tqdm": True, "logging_steps": 1000, "report_to": []}
    ours_grpo = trainer_config("grpo", grpo_common, output_dir=tempfile.mkdtemp())
    trl_grpo = GRPOConfig(output_dir=tempfile.mkdtemp(), learning_rate=1e-5, **grpo_common, **cpu)

    peak = matmul_peak()
    ours_tps, n = sft_run(args.preset, sft_data, tokenizer, ours_sft, args.sft_steps)
    trl_tps, _ = sft_run(args.preset, sft_data, tokenizer, trl_sft, args.sft_steps)
    ours_gps = grpo_run(args.preset, grpo_data, tokenizer, ours_grpo)
    trl_gps = grpo_run(args.preset, grpo_data, tokenizer, trl_grpo)

    mfu = lambda tps: 6 * n * tps / peak  # noqa: E731
    print(f"model {args.preset}: {n:,} parameters; measured fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"SFT  r1kit:       {ours_tps:8,.0f} tokens/s  MFU {mfu(ours_tps):5.1%}")
    print(f"SFT  TRL default: {trl_tps:8,.0f} tokens/s  MFU {mfu(trl_tps):5.1%}")
    print(f"SFT  ratio r1kit / TRL default: {ours_tps / trl_tps:.2f}x")
    print(f"GRPO r1kit:       {ours_gps:.3f} steps/s")
    print(f"GRPO TRL default: {trl_gps:.3f} steps/s")
    print(f"GRPO ratio r1kit / TRL default: {ours_gps / trl_gps:.2f}x  (target >= 1.5x)")


if __name__ == "__main__":
    main()
