"""`grpo`: reinforcement learning with the verifier as the reward (TRL's GRPOTrainer)."""

from __future__ import annotations

from r1kit.ledger import TokenMeter
from r1kit.rundir import RunDir
from r1kit.stages.common import (budgeted, load_student, save_student, stage_data, stage_lora, training_paths,
                                 training_style)


def run_grpo(run: RunDir, stage, meter) -> None:
    from r1kit.models import resolve_model_path
    from r1kit.train import train_grpo

    source = run.model_path(stage.from_)
    model, tokenizer = load_student(run, stage, meter)
    style = training_style(run, stage, source)
    dataset = stage_data(run, stage, style=style, drop=("completion",))
    # With beta > 0 TRL rebuilds the reference model from the path, so hand it the path.
    target = resolve_model_path(source) if stage.train.get("beta", 0.0) and not stage_lora(run, stage) else model
    train, callbacks = budgeted(run, stage, model, tokenizer, dataset, "grpo")
    trainer = train_grpo(target, tokenizer, dataset, rewards=stage.rewards, train=train, seed=run.recipe.seed,
                         on_log=TokenMeter(meter, generated_tokens=1, train_tokens=1), callbacks=callbacks,
                         curriculum=stage.curriculum, step_credit=stage.step_credit, budgeted=bool(stage.flops_budget),
                         say=lambda line: run.console.print(line, style="yellow", markup=False, highlight=False),
                         **training_paths(run, stage))
    save_student(run, stage, trainer, tokenizer, style)
