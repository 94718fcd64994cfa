"""GRPO through TRL's GRPOTrainer, with r1kit's verifier rewards by name and weight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit import rewards as reward_registry
from r1kit.errors import R1kitError
from r1kit.models import count_parameters
from r1kit.train.common import MetricsLog, base_args, last_checkpoint, quiet_progress

# Measured from the quickstart's SFT model (1M params, 8 prompts x 8 samples a step, 40 steps, training
# accuracy against a frozen-policy run on the same prompts): the per-step gradient is mostly sampling
# noise, and Adam moves every weight by about the learning rate whatever the gradient's size. A reward
# of coin flips at lr 3e-4 takes training accuracy from 0.66 to 0.03; the real reward at 3e-4 loses
# 0.28, at 1e-4 0.09, at 3e-5 nothing (nor does noise). Hence a small learning rate. Without
# per-group std scaling (`scale_rewards: none`, Dr. GRPO) the loss at 1e-4 was -0.04 instead of
# -0.09, within noise of it: not made a default (the shipped recipes' measured tables use TRL's).
# See r1kit.train.health for the symptoms when a recipe overrides these.
GRPO_DEFAULTS: dict[str, Any] = {
    "learning_rate": 2e-5,
    "lr_scheduler_type": "constant_with_warmup",
    "warmup_steps": 0,
    "per_device_train_batch_size": 64,
    "num_generations": 8,
    "max_completion_length": 96,
    "temperature": 1.0,
    "beta": 0.0,
    "logging_steps": 5,
    "save_steps": 50,
}


def grpo_config(output_dir: Path, train: dict[str, Any], *, seed: int = 0, reward_weights: list[float] | None = None,
                parameters: int | None = None):
    from trl import GRPOConfig

    args = {**base_args(output_dir, seed, parameters), **GRPO_DEFAULTS, **train}
    if args.get("use_vllm"):  # TRL's rollouts through vLLM (colocate, or a `trl vllm-serve` server)
        from r1kit.engines import require_vllm

        require_vllm("use_vllm: true")
    if reward_weights is not None and "reward_weights" not in train:
        args["reward_weights"] = reward_weights
    return GRPOConfig(**args)


def train_grpo(model, tokenizer, dataset, *, output_dir: Path, rewards: dict[str, Any], train: dict[str, Any],
               seed: int = 0, metrics_path: Path | None = None, on_log: Any = None, peft_config: Any = None,
               callbacks: list | None = None, say: Any = None, health: bool = True, curriculum: Any = None,
               step_credit: bool = False):
    """`model` may be a model object or a path; with `beta > 0` TRL builds the reference model
    from the model's `config._name_or_path`, so pass a saved directory then. With `health`, the
    RL health checks (`r1kit.train.health`) report symptoms through `say` and into metrics.jsonl.
    `curriculum` (a stage's `curriculum:` block, `r1kit.recipe.CurriculumSpec`) lets a level curriculum with
    dynamic sampling choose the prompts; it observes the `accuracy` reward, which `rewards` must name.
    `step_credit` blames a wrong completion only from its first wrong step (`r1kit.train.step_credit`);
    it reads the dataset's `steps` column."""
    from trl import GRPOTrainer

    from r1kit.train.health import RLHealth

    functions, weights = reward_registry.build(rewards)
    parameters = None if isinstance(model, (str, Path)) else count_parameters(model)  # for the CPU bf16 default
    args = grpo_config(output_dir, train, seed=seed, reward_weights=weights, parameters=parameters)
    metrics = Path(metrics_path or Path(output_dir) / "metrics.jsonl")
    log = MetricsLog(metrics, on_log)
    checks = [RLHealth(metrics, say)] if health else []  # after `log`, so its records follow the row they judge
    trainer_class, options = GRPOTrainer, {}
    if curriculum is not None:
        from r1kit.train.curriculum import CurriculumGRPOTrainer

        if "accuracy" not in rewards:
            raise R1kitError("curriculum: it reads the accuracy reward's pass rates; add `accuracy` to rewards")
        trainer_class = CurriculumGRPOTrainer
        options = {"settings": curriculum, "accuracy": list(rewards).index("accuracy"), "say": say}
    if step_credit:
        from r1kit.train.step_credit import StepCredit

        if "steps" not in dataset.column_names:
            raise R1kitError("step_credit: the dataset has no `steps` column (the reference steps it blames against)")
        trainer_class = type(f"StepCredit{trainer_class.__name__}", (StepCredit, trainer_class), {})
    trainer = trainer_class(model=model, reward_funcs=functions, args=args, train_dataset=dataset,
                            processing_class=tokenizer, callbacks=[log, *checks, *(callbacks or [])],
                            peft_config=peft_config, **options)
    quiet_progress(trainer)
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir))
    return trainer
