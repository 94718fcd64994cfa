"""Is this machine ready, and how fast is it? SFT tokens/s, GRPO steps/s and generation tokens/s
with r1kit's own defaults (bf16 + TF32 on CUDA, fp32 on CPU: `r1kit.train.device_defaults`),
on whatever device is present.

    python benchmarks/gpu_check.py --quick          # about a minute on a 2-core CPU
    python benchmarks/gpu_check.py --preset tiny-5m --sft-steps 50 --grpo-steps 10

The default model is tiny-1m on CPU and tiny-5m on CUDA (`--preset` to choose).
"""

import argparse
import platform
import tempfile
import time
import warnings
from importlib.metadata import version

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from bench_training import StepClock, fresh_accelerator
from r1kit import data, rewards
from r1kit.engines import GenerationSettings, generate_texts
from r1kit.models import build_char_tokenizer, build_tiny_model, count_parameters
from r1kit.train import device_defaults
from r1kit.train.config import trainer_config


def device_name() -> str:
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def precision() -> str:
    chosen = device_defaults()
    dtype = "bf16" if chosen.get("bf16") else "fp16" if chosen.get("fp16") else "fp32"
    return dtype + (" + TF32 matmuls" if chosen.get("tf32") else "")


def sft_tokens_per_s(preset: str, tokenizer, steps: int, batch: int) -> tuple[float, float]:
    from trl import SFTTrainer

    fresh_accelerator()
    rows = data.build("arithmetic", [1, 2, 3], batch * (steps + 2), style="compact")["train"]
    config = trainer_config("sft", {"max_steps": steps, "per_device_train_batch_size": batch, "save_strategy": "no",
                                    "disable_tqdm": True, "logging_steps": 1000}, output_dir=tempfile.mkdtemp())
    marks: list[int] = []
    clock = StepClock(warmup=2)

    class Tokens(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            marks.append(trainer._total_train_tokens)

    trainer = SFTTrainer(model=build_tiny_model(preset, tokenizer), args=config, train_dataset=rows,
                         processing_class=tokenizer, callbacks=[clock, Tokens()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    loss = trainer.state.log_history[-1].get("train_loss", float("nan"))
    return (trainer._total_train_tokens - marks[clock.warmup]) / clock.seconds, loss


def grpo_steps_per_s(preset: str, tokenizer, steps: int, batch: int, completion: int) -> float:
    from trl import GRPOTrainer

    fresh_accelerator()
    rows = data.build("arithmetic", [2, 3], 200, style="compact")["train"].remove_columns(["completion"])
    functions, weights = rewards.build({"accuracy": 1.0, "steps": 0.5})
    config = trainer_config("grpo", {"max_steps": steps, "per_device_train_batch_size": batch, "num_generations": 8,
                                     "max_completion_length": completion, "save_strategy": "no", "disable_tqdm": True,
                                     "logging_steps": 1000}, output_dir=tempfile.mkdtemp(), reward_weights=weights)
    clock = StepClock(warmup=1)
    trainer = GRPOTrainer(model=build_tiny_model(preset, tokenizer), reward_funcs=functions, args=config,
                          train_dataset=rows, processing_class=tokenizer, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return clock.steps / clock.seconds


def generation_tokens_per_s(preset: str, tokenizer, prompts: int, new_tokens: int) -> float:
    model = build_tiny_model(preset, tokenizer)
    if torch.cuda.is_available():
        model = model.to("cuda", dtype=torch.bfloat16 if device_defaults()["bf16"] else torch.float16)
    texts = [f"{a}+{a % 7}*3\n" for a in range(prompts)]
    settings = GenerationSettings(max_new_tokens=new_tokens, batch_size=prompts)
    generate_texts(model, tokenizer, texts[:8], settings=settings)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    # Sampling, so that an untrained model doesn't stop early: every sequence runs to the budget.
    outputs = generate_texts(model, tokenizer, texts, greedy=False, settings=settings)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    produced = sum(len(tokenizer(t[0], add_special_tokens=False)["input_ids"]) for t in outputs)
    return produced / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="tiny-1m (CPU default), tiny-5m (CUDA default), tiny-moe")
    parser.add_argument("--quick", action="store_true", help="few steps: a readiness check in about a minute")
    parser.add_argument("--sft-steps", type=int, default=None)
    parser.add_argument("--grpo-steps", type=int, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import datasets
    from transformers.utils import logging

    logging.set_verbosity_error()
    datasets.disable_progress_bars()

    cuda = torch.cuda.is_available()
    preset = args.preset or ("tiny-5m" if cuda else "tiny-1m")
    quick = args.quick and not cuda  # a GPU does the full check in seconds
    sft_steps = args.sft_steps or (6 if quick else 40)
    grpo_steps = args.grpo_steps or (3 if quick else 10)
    batch = 16 if quick else 64
    tokenizer = build_char_tokenizer()
    parameters = count_parameters(build_tiny_model(preset, tokenizer))

    start = time.perf_counter()
    sft_tps, loss = sft_tokens_per_s(preset, tokenizer, sft_steps, batch)
    grpo_sps = grpo_steps_per_s(preset, tokenizer, grpo_steps, batch, 32 if quick else 64)
    gen_tps = generation_tokens_per_s(preset, tokenizer, 32 if quick else 256, 32 if quick else 64)
    rows = [
        ("device", device_name()),
        ("precision (device_defaults)", precision()),
        ("model", f"{preset}, {parameters:,} parameters"),
        ("versions", f"torch {torch.__version__}, transformers {version('transformers')}, trl {version('trl')}, "
                     f"accelerate {version('accelerate')}"),
        (f"SFT ({sft_steps} steps x {batch} rows)", f"{sft_tps:,.0f} tokens/s (final loss {loss:.3f})"),
        (f"GRPO ({grpo_steps} steps x {batch} completions)", f"{grpo_sps:.3f} steps/s"),
        ("generation (transformers, sampled)", f"{gen_tps:,.0f} tokens/s"),
        ("wall time of the check", f"{time.perf_counter() - start:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
