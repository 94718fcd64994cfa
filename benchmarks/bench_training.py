"""Training throughput of r1kit's defaults vs TRL's default configuration, side by side in one
run, on the same tiny model and the same data:

- SFT tokens/s and model-FLOPs utilisation (6·N·tokens/s over the measured fp32 matmul peak);
- GRPO rollouts/s (completions generated per second of training wall time) and optimizer steps/s,
  for four configurations, and where a step's time goes (generation, scoring, the training pass):

  trl          TRL's defaults (only what any run must: steps, batch 64 of 8 generations, lr 1e-5,
               `use_cpu`); gradient checkpointing on, bf16 on, a 512-token completion budget.
  quickstart   recipes/quickstart.yaml's GRPO stage as shipped, through `trainer_config("grpo", ...)`:
               64 completions (8 prompts x 8) a step, 64-token completions, lr 2e-5.
  large        2048 rollouts an optimizer step: per_device_train_batch_size 256 x
               gradient_accumulation_steps 8, 16 generations (128 prompts), 96-token completions,
               `loss_type: dr_grpo`, beta 0.
  large-reuse  the same with `num_iterations: 2`: each generation batch trains two optimizer steps.
  RECIPE:STAGE a shipped recipe's GRPO stage as it trains (its `train:` through `trainer_config`),
               e.g. r1-smollm2-cpu:grpo or r1-zero-smollm2-cpu:zero, on a real model:

    python benchmarks/bench_training.py --model packaged:smollm2 --style short --chat --levels 0,1 --prompts 200 \
        --runs trl,r1-zero-smollm2-cpu:zero --grpo-steps 3 --trl-completion-length 32

    python benchmarks/bench_training.py                          # all of it, sized for ~5 minutes on 2 cores
    python benchmarks/bench_training.py --runs large,large-reuse --grpo-steps 4 --jsonl out.jsonl
    python benchmarks/bench_training.py --model runs/quickstart/stages/sft/model --runs quickstart,large

`--model DIR` starts every run from a saved model (an SFT model writes short compact traces and
stops; a fresh tiny model rarely stops before the completion budget).

How TRL 1.16 batches GRPO (grpo_config.py `__post_init__`, grpo_trainer.py `_prepare_inputs`,
`_get_train_sampler`): `per_device_train_batch_size` counts completions, not prompts;
`steps_per_generation` defaults to `gradient_accumulation_steps`, and `generation_batch_size` to
per_device_train_batch_size x processes x steps_per_generation (set one of the two, not both): one
generation call makes the completions of `steps_per_generation` micro-batches, all prompt groups
whole. TRL regenerates every steps_per_generation x num_iterations micro-batches; with
num_iterations > 1 the sampler repeats the same generation batch, so it is trained on again (a PPO
epoch), and the log-probs at generation time are computed once more ("old" log-probs, for the
clipped ratio) because the policy moves between the passes. So `large` generates 2048 rollouts for
every optimizer step; `large-reuse` generates 2048 for every two optimizer steps (1024 new
rollouts a step, each seen twice).

Each run warms up for one generation cycle (1 optimizer step; 2 for `large-reuse`), then times
`--grpo-steps` optimizer steps (rounded up to whole cycles). "TRL default" sets only what any run
must; everything else is TRL's default. r1kit's side is exactly what its stages use.
"""

import argparse
import json
import math
import tempfile
import time
import warnings

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from r1kit import data, rewards, tasks
from r1kit.models import build_char_tokenizer, build_tiny_model, count_parameters, load_model
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


GRPO_RUNS = ("trl", "quickstart", "large", "large-reuse")
QUICKSTART = {"per_device_train_batch_size": 64, "num_generations": 8, "learning_rate": 2e-5,
              "max_completion_length": 64}  # recipes/quickstart.yaml, stages.grpo.train
LARGE = {"per_device_train_batch_size": 256, "gradient_accumulation_steps": 8, "num_generations": 16,
         "max_completion_length": 96, "loss_type": "dr_grpo", "beta": 0.0}
REWARDS = {"accuracy": 1.0, "steps": 0.5}  # the quickstart's


class Models:
    """A fresh copy of the same starting model for every run: a tiny preset, or a saved model."""

    def __init__(self, preset: str, path: str | None):
        self.preset, self.path = preset, path
        self.tokenizer = load_model(path)[1] if path else build_char_tokenizer()

    def fresh(self):
        return load_model(self.path)[0] if self.path else build_tiny_model(self.preset, self.tokenizer)

    def name(self) -> str:
        return self.path or self.preset


def sft_run(models, dataset, config):
    from trl import SFTTrainer

    fresh_accelerator()
    tokens = []

    class Tokens(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            tokens.append(trainer._total_train_tokens)

    clock = StepClock()
    trainer = SFTTrainer(model=models.fresh(), args=config, train_dataset=dataset, processing_class=models.tokenizer,
                         callbacks=[clock, Tokens()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    counted = trainer._total_train_tokens - tokens[clock.warmup]
    return counted / clock.seconds


def timed_grpo_trainer():
    """TRL's GRPOTrainer, recording when each generation batch was made and scored, and its size."""
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.generations = []  # (start, seconds)
            self.scorings = []  # (start, seconds, rollouts, completion tokens)

        def _generate(self, prompts):
            start = time.perf_counter()
            out = super()._generate(prompts)
            self.generations.append((start, time.perf_counter() - start))
            return out

        def _generate_and_score_completions(self, inputs):
            start = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            tokens = int(out["completion_mask"].sum())
            self.scorings.append((start, time.perf_counter() - start, len(inputs), tokens))
            return out

    return TimedGRPOTrainer


def grpo_run(name, models, dataset, config, steps_wanted):
    """Rollouts/s, optimizer steps/s and the measured window's split, after one generation cycle."""
    fresh_accelerator()
    cycle = max(1, config.steps_per_generation * config.num_iterations // config.gradient_accumulation_steps)
    measured = cycle * math.ceil(steps_wanted / cycle)
    config.max_steps = cycle + measured
    clock = StepClock(warmup=cycle)
    functions, _ = rewards.build(REWARDS)
    trainer = timed_grpo_trainer()(model=models.fresh(), reward_funcs=functions, args=config, train_dataset=dataset,
                                   processing_class=models.tokenizer, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    after = lambda events: [e for e in events if e[0] >= clock.start]  # noqa: E731
    generating = sum(e[1] for e in after(trainer.generations))
    scoring = sum(e[1] for e in after(trainer.scorings))
    rollouts = sum(e[2] for e in after(trainer.scorings))
    tokens = sum(e[3] for e in after(trainer.scorings))
    seconds = clock.seconds
    return {"config": name, "steps": clock.steps, "seconds": round(seconds, 2),
            "rollouts_per_step": config.generation_batch_size // config.num_iterations,
            "rollouts_per_s": rollouts / seconds, "steps_per_s": clock.steps / seconds,
            "completion_tokens_per_s": tokens / seconds, "mean_completion_tokens": tokens / max(rollouts, 1),
            "share_generate": generating / seconds, "share_score": (scoring - generating) / seconds,
            "share_train": (seconds - scoring) / seconds,
            "settings": {k: getattr(config, k) for k in ("per_device_train_batch_size", "gradient_accumulation_steps",
                                                         "num_generations", "generation_batch_size",
                                                         "steps_per_generation", "num_iterations",
                                                         "max_completion_length", "loss_type", "beta",
                                                         "learning_rate", "gradient_checkpointing", "bf16")}}


def recipe_stage_train(run: str) -> dict:
    """`RECIPE:STAGE` → that shipped GRPO stage's `train:` without its step count and logging."""
    from r1kit import recipe as recipes

    name, _, stage_name = run.partition(":")
    recipe = recipes.load(recipes.shipped_recipe(name))
    stage = next((s for s in recipe.stages if s.name == stage_name and s.kind == "grpo"), None)
    if stage is None:
        raise SystemExit(f"{name} has no grpo stage {stage_name!r}")
    drop = ("max_steps", "logging_steps", "save_steps")
    return {k: v for k, v in stage.train.items() if k not in drop}


def grpo_configs(runs, parameters, cpu, trl_completion_length=None):
    """The TRL config of each GRPO run asked for."""
    from trl import GRPOConfig

    quiet = {"save_strategy": "no", "disable_tqdm": True, "logging_steps": 1000, "report_to": []}
    _, weights = rewards.build(REWARDS)
    ours = lambda train: trainer_config("grpo", {**quiet, **train}, output_dir=tempfile.mkdtemp(),  # noqa: E731
                                        reward_weights=weights, parameters=parameters)
    length = {"max_completion_length": trl_completion_length} if trl_completion_length else {}
    build = {"trl": lambda: GRPOConfig(output_dir=tempfile.mkdtemp(), learning_rate=1e-5, per_device_train_batch_size=64,
                                       num_generations=8, **length, **quiet, **cpu),
             "quickstart": lambda: ours(QUICKSTART),
             "large": lambda: ours(LARGE),
             "large-reuse": lambda: ours({**LARGE, "num_iterations": 2})}
    return {name: build[name]() if name in build else ours(recipe_stage_train(name)) for name in runs}


def print_grpo(rows) -> None:
    print(f"{'GRPO':<12} {'rollouts/step':>13} {'rollouts/s':>10} {'steps/s':>8} {'tokens/s':>9} {'mean len':>8}"
          f"  {'generate':>8} {'score':>6} {'train':>6}")
    for r in rows:
        print(f"{r['config']:<12} {r['rollouts_per_step']:>13,} {r['rollouts_per_s']:>10.1f} {r['steps_per_s']:>8.4f}"
              f" {r['completion_tokens_per_s']:>9,.0f} {r['mean_completion_tokens']:>8.1f}"
              f"  {r['share_generate']:>8.0%} {r['share_score']:>6.0%} {r['share_train']:>6.0%}")
    base = {r["config"]: r for r in rows}.get("trl")
    for r in rows:
        if base and r is not base:
            print(f"{r['config']} / trl: rollouts/s {r['rollouts_per_s'] / base['rollouts_per_s']:.2f}x, "
                  f"steps/s {r['steps_per_s'] / base['steps_per_s']:.2f}x")
    print("generate: TRL's _generate; score: rewards, advantages and old log-probs; train: the rest of the step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny-1m")
    parser.add_argument("--model", default=None, help="a saved model directory to start every run from")
    parser.add_argument("--runs", default="sft," + ",".join(GRPO_RUNS),
                        help=f"comma-separated, of: sft, {', '.join(GRPO_RUNS)}")
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=None,
                        help="optimizer steps timed after warm-up (default: trl 2, quickstart 6, large 1, large-reuse 2)")
    parser.add_argument("--batch", type=int, default=64, help="SFT rows a step")
    parser.add_argument("--jsonl", default=None, help="append one JSON line a measurement here (else stdout)")
    parser.add_argument("--style", default="compact", help="the GRPO prompts' style (short or think for a chat model)")
    parser.add_argument("--chat", action="store_true", help="GRPO prompts through the model's chat template")
    parser.add_argument("--levels", default="2,3", help="the GRPO prompts' levels (0 is level 1 with one-digit operands)")
    parser.add_argument("--prompts", type=int, default=2000, help="GRPO prompts drawn (level 0 has 162 in all)")
    parser.add_argument("--trl-completion-length", type=int, default=None,
                        help="the trl run's max_completion_length (default: TRL's, 512 tokens)")
    args = parser.parse_args()
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = {r for r in runs if ":" not in r} - {"sft", *GRPO_RUNS}
    if unknown:
        parser.error(f"unknown run(s) {sorted(unknown)}; choose from sft, {', '.join(GRPO_RUNS)}")
    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()

    models = Models(args.preset, args.model)
    n = count_parameters(models.fresh())
    cpu = {"use_cpu": True} if not torch.cuda.is_available() else {}
    records = []
    if "sft" in runs:
        records.append(sft_records(args, models, n, cpu))
    grpo = [r for r in runs if r != "sft"]
    if grpo:
        steps = {"trl": 2, "quickstart": 6, "large": 1, "large-reuse": 1}  # sized for ~5 minutes on 2 cores
        task = tasks.get("arithmetic").with_levels({0: {"like": 1, "max_value": 9}})
        levels = [int(level) for level in args.levels.split(",")]
        prompts = data.build(task, levels, args.prompts, style=args.style,
                             conversational=args.chat)["train"].remove_columns(["completion"])
        rows = [grpo_run(name, models, prompts, config, args.grpo_steps or steps.get(name, 2))
                for name, config in grpo_configs(grpo, n, cpu, args.trl_completion_length).items()]
        print(f"model {models.name()}: {n:,} parameters")
        print_grpo(rows)
        records += [{"benchmark": "grpo", "model": models.name(), **row} for row in rows]
    lines = "".join(json.dumps(record) + "\n" for record in records)
    if args.jsonl:
        with open(args.jsonl, "a") as out:
            out.write(lines)
    else:
        print(lines, end="")


def sft_records(args, models, n, cpu) -> dict:
    from trl import SFTConfig

    sft_data = data.build("arithmetic", [1, 2, 3], args.batch * (args.sft_steps + 2), style="compact")["train"]
    quiet = {"max_steps": args.sft_steps, "per_device_train_batch_size": args.batch, "save_strategy": "no",
             "disable_tqdm": True, "logging_steps": 1000, "report_to": []}
    ours = trainer_config("sft", quiet, output_dir=tempfile.mkdtemp(), parameters=n)
    trl = SFTConfig(output_dir=tempfile.mkdtemp(), learning_rate=1e-3, **quiet, **cpu)
    peak = matmul_peak()
    ours_tps = sft_run(models, sft_data, ours)
    trl_tps = sft_run(models, sft_data, trl)
    mfu = lambda tps: 6 * n * tps / peak  # noqa: E731
    print(f"model {models.name()}: {n:,} parameters; measured fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"SFT  r1kit:       {ours_tps:8,.0f} tokens/s  MFU {mfu(ours_tps):5.1%}")
    print(f"SFT  TRL default: {trl_tps:8,.0f} tokens/s  MFU {mfu(trl_tps):5.1%}")
    print(f"SFT  ratio r1kit / TRL default: {ours_tps / trl_tps:.2f}x")
    return {"benchmark": "sft", "model": models.name(), "steps": args.sft_steps, "batch": args.batch,
            "r1kit_tokens_per_s": ours_tps, "trl_tokens_per_s": trl_tps, "r1kit_mfu": mfu(ours_tps),
            "trl_mfu": mfu(trl_tps), "peak_flops": peak}


if __name__ == "__main__":
    main()
