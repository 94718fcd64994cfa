"""GRPO through TRL's GRPOTrainer, with r1kit's verifier rewards by name and weight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit import rewards as reward_registry
from r1kit import tasks
from r1kit.errors import R1kitError
from r1kit.models import count_parameters
from r1kit.train.common import MetricsLog, last_checkpoint, quiet_progress
from r1kit.train.config import trainer_config


def train_grpo(model, tokenizer, dataset, *, output_dir: Path, rewards: dict[str, Any], train: dict[str, Any],
               seed: int = 0, metrics_path: Path | None = None, on_log: Any = None, callbacks: list | None = None,
               say: Any = None, health: bool = True, curriculum: Any = None, step_credit: bool = False,
               budgeted: bool = False):
    """`model` may be a model object or a path; with `beta > 0` TRL builds the reference model
    from the model's `config._name_or_path`, so pass a saved directory then. With `health`, the
    RL health checks (`r1kit.train.health`) report symptoms through `say` and into metrics.jsonl.
    `curriculum` (a stage's `curriculum:` block, `r1kit.recipe.CurriculumSpec`) lets a level curriculum with
    dynamic sampling choose the prompts; it observes the `accuracy` reward, which `rewards` must name.
    `step_credit` blames a wrong completion only from its first wrong step (`r1kit.train.step_credit`);
    it reads the dataset's `steps` column. `budgeted`: a `FlopsBudget` in `callbacks` stops it."""
    from trl import GRPOTrainer

    from r1kit.train.health import RLHealth

    functions, weights = reward_registry.build(rewards, task=only_task(dataset))
    parameters = None if isinstance(model, (str, Path)) else count_parameters(model)  # for the CPU bf16 default
    args = trainer_config("grpo", train, output_dir=output_dir, seed=seed, reward_weights=weights,
                          parameters=parameters, budgeted=budgeted)
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
                            processing_class=tokenizer, callbacks=[log, *checks, *(callbacks or [])], **options)
    quiet_progress(trainer)
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir))
    return trainer


def only_task(dataset) -> tasks.Task | None:
    """The one task every row is of (rewards are bound to it), or None for mixed or untagged rows."""
    names = dataset.unique("task") if "task" in dataset.column_names else []
    return tasks.get(names[0]) if len(names) == 1 and names[0] else None
