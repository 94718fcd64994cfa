"""What several stage kinds share: their training rows, the student they start from, the trace
style they train in, FLOPs budgets for trainers that generate, and the teacher a stage names."""

from __future__ import annotations

from typing import Any

from r1kit import data as data_mod
from r1kit.files import atomic_dir
from r1kit.rundir import DATA, RunDir
from r1kit.teachers import TeacherSpec
from r1kit.train.common import read_metrics


def stage_data(run: RunDir, stage, *, style: str, drop: tuple[str, ...] = ()):
    """The stage's training rows, built once (seeded) and kept in `stages/<name>/data`. Under
    several processes rank 0 builds and saves them first; the others then load the same rows."""
    from r1kit.distributed import main_first

    with main_first():
        return _stage_data(run, stage, style=style, drop=drop)


def _stage_data(run: RunDir, stage, *, style: str, drop: tuple[str, ...] = ()):
    from datasets import concatenate_datasets, load_from_disk

    path = run.stage_dir(stage.name) / DATA
    if path.exists():
        return load_from_disk(str(path))
    spec, recipe = stage.data, run.recipe
    skill_rows = round(spec.count * spec.skills)
    options = {"granularity": spec.granularity} if spec.granularity else {}  # only the arithmetic compiler has it
    # A share of the task's rows as worked solutions in the recipe's style (pretraining; the skills stay answer-only).
    mix = {"traces": spec.traces, "trace_style": recipe.style} if spec.traces else {}
    built = data_mod.build(recipe.task_for(spec, **options), spec.levels, spec.count - skill_rows + 1, style=style,
                           seed=recipe.seed, test_fraction=1 / (spec.count - skill_rows + 1),
                           conversational=recipe.chat, shares=spec.shares, **mix)
    dataset = built["train"]  # one row went to `test`, which training never reads
    if skill_rows:
        from r1kit.tasks.skills import SKILLS

        parts = [data_mod.build(skill, [1, 2, 3], skill_rows // len(SKILLS) + 2, style=style, seed=recipe.seed)["train"]
                 for skill in SKILLS]
        dataset = concatenate_datasets([dataset, *parts]).shuffle(seed=recipe.seed)
    dataset = dataset.remove_columns([c for c in drop if c in dataset.column_names])
    return _write_stage_data(run, stage, dataset)


def save_stage_data(run: RunDir, stage, dataset):
    """Keep rows made elsewhere (a teacher's traces) as the stage's training rows. Every rank
    calls it; rank 0 writes, and every rank then loads the same rows."""
    from datasets import load_from_disk

    from r1kit.distributed import barrier, is_main

    if is_main():
        _write_stage_data(run, stage, dataset)
    barrier()
    return load_from_disk(str(run.stage_dir(stage.name) / DATA))


def _write_stage_data(run: RunDir, stage, dataset):
    from datasets import load_from_disk

    path = run.stage_dir(stage.name) / DATA
    with atomic_dir(path, replace=True) as tmp:  # a kill mid-write must not leave half a dataset to resume from
        dataset.save_to_disk(str(tmp))
    return load_from_disk(str(path))


def training_style(run: RunDir, stage, source: str | None) -> str:
    """The one rule for the trace style a training stage writes: its data's `style:`; else the
    style its source model (`from:`, or a teacher) was trained to write; else the recipe's."""
    from r1kit.prompting import trained_style

    return stage.data.style or (trained_style(source) if source else None) or run.recipe.style


def load_student(run: RunDir, stage, meter):
    """The model a training stage starts from (`from:`), metered, with its LoRA (`stage_lora`)."""
    from r1kit.models import apply_lora, count_parameters, load_model

    model, tokenizer = load_model(run.model_path(stage.from_), dtype=run.recipe.model.dtype)
    meter.add(parameters=count_parameters(model))
    if lora := stage_lora(run, stage):
        model = apply_lora(model, **lora)
    return model, tokenizer


def stage_lora(run: RunDir, stage) -> dict[str, Any] | None:
    """The LoRA a training stage trains with: its own `lora:` (`false`: none), else the recipe's."""
    lora = run.recipe.model.lora if stage.lora is None else stage.lora
    return lora or None


def save_student(run: RunDir, stage, trainer, tokenizer, style: str) -> None:
    from r1kit.distributed import save_trained

    save_trained(trainer, tokenizer, run.stage_dir(stage.name) / "model",
                 prompt_info={"style": style, "chat": run.recipe.chat})


def training_paths(run: RunDir, stage) -> dict[str, Any]:
    """Where a trainer keeps its checkpoints and its metrics log."""
    return {"output_dir": run.stage_dir(stage.name) / "checkpoints",
            "metrics_path": run.stage_dir(stage.name) / "metrics.jsonl"}


def read_curves(run: RunDir, stage) -> dict[str, Any]:
    """A training stage's part of results.json: its logged metrics."""
    return {"curves": {stage.name: read_metrics(run.stage_dir(stage.name) / "metrics.jsonl")}}


def budgeted(run: RunDir, stage, model, tokenizer, dataset, kind: str) -> tuple[dict[str, Any], list]:
    """For trainers that generate (`kind` grpo or distill): with a FLOPs budget, run to a step
    ceiling and stop on the budget."""
    train = dict(stage.train)
    if not stage.flops_budget:
        return train, []
    from r1kit.models import count_parameters
    from r1kit.train.budget import FlopsBudget, rows_per_step, step_ceiling
    from r1kit.train.config import trainer_config

    shortest = min(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in _prompt_texts(dataset, tokenizer))
    parameters = count_parameters(model)
    config = trainer_config(kind, train, output_dir=training_paths(run, stage)["output_dir"], budgeted=True)
    train["max_steps"] = step_ceiling(stage.flops_budget, parameters, shortest + 1, rows_per_step(config))
    run.console.print(f"FLOPs budget {stage.flops_budget:.3g}: training stops when it is spent")
    return train, [FlopsBudget(stage.flops_budget, parameters)]


def _prompt_texts(dataset, tokenizer) -> list[str]:
    prompts = dataset["prompt"]
    if prompts and isinstance(prompts[0], list):
        return [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    return prompts


def resolve_teacher(run: RunDir, teacher: TeacherSpec) -> TeacherSpec:
    """A stage's `teacher:` with an earlier stage's name replaced by the local model it made."""
    if teacher.backend != "stage":
        return teacher
    path = str(run.model_path(teacher.target))
    return TeacherSpec("local", path, f"local:{path}")
