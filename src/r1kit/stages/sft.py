"""`sft`: supervised fine-tuning on the compiler's exact traces (the cold start)."""

from __future__ import annotations

from r1kit.ledger import TokenMeter
from r1kit.rundir import RunDir
from r1kit.stages.common import load_student, save_student, stage_data, training_paths, training_style


def run_sft(run: RunDir, stage, meter) -> None:
    model, tokenizer = load_student(run, stage, meter)
    style = training_style(run, stage, run.model_path(stage.from_))
    sft_on(run, stage, meter, model, tokenizer, stage_data(run, stage, style=style), style)


def sft_on(run: RunDir, stage, meter, model, tokenizer, dataset, style: str) -> None:
    """SFT of `model` on `dataset`; a FLOPs budget becomes a step count (SFT knows its tokens in advance)."""
    from r1kit.models import count_parameters
    from r1kit.train import train_sft

    train = dict(stage.train)
    if stage.flops_budget:
        from r1kit.train.budget import row_lengths, rows_per_step, sft_steps
        from r1kit.train.config import trainer_config

        config = trainer_config("sft", train, output_dir=training_paths(run, stage)["output_dir"])
        train["max_steps"] = sft_steps(stage.flops_budget, count_parameters(model), row_lengths(dataset, tokenizer),
                                       rows_per_step(config))
        run.console.print(f"FLOPs budget {stage.flops_budget:.3g} → {train['max_steps']} steps")
    trainer = train_sft(model, tokenizer, dataset, train=train, seed=run.recipe.seed,
                        on_log=TokenMeter(meter, train_tokens=1), **training_paths(run, stage))
    save_student(run, stage, trainer, tokenizer, style)
