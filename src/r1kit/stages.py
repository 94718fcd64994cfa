"""One function per stage kind: `run_<kind>(run, stage, meter)`. Each reads its inputs from
the run directory, writes its outputs there, and tells the meter what it processed."""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import Any

from r1kit import data as data_mod
from r1kit.errors import R1kitError
from r1kit.pipeline import TINY_WORLD_CACHE, Run, write_json

# ---------------------------------------------------------------- data


def stage_data(run: Run, stage, *, style: str | None = None, drop: tuple[str, ...] = ()):
    """The stage's training rows, built once (seeded) and kept in `stages/<name>/data`. Under
    several processes rank 0 builds and saves them first; the others then load the same rows."""
    from r1kit.distributed import main_first

    with main_first():
        return _stage_data(run, stage, style=style, drop=drop)


def _stage_data(run: Run, stage, *, style: str | None = None, drop: tuple[str, ...] = ()):
    from datasets import concatenate_datasets, load_from_disk

    path = run.stage_dir(stage.name) / "data"
    if path.exists():
        return load_from_disk(str(path))
    spec, recipe = stage.data, run.recipe
    style = style or spec.style or recipe.style
    task = spec.task or recipe.task
    skill_rows = round(spec.count * spec.skills)
    options = {"fine_steps": True} if spec.fine_steps else {}  # only the arithmetic compiler has it
    built = data_mod.build(task, spec.levels, spec.count - skill_rows + 1, style=style, seed=recipe.seed,
                           test_fraction=1 / (spec.count - skill_rows + 1), conversational=recipe.chat, **options)
    dataset = built["train"]  # one row went to `test`, which training never reads
    if skill_rows:
        from r1kit.tasks.skills import SKILLS

        parts = [data_mod.build(skill, [1, 2, 3], skill_rows // len(SKILLS) + 2, style=style, seed=recipe.seed)["train"]
                 for skill in SKILLS]
        dataset = concatenate_datasets([dataset, *parts]).shuffle(seed=recipe.seed)
    dataset = dataset.remove_columns([c for c in drop if c in dataset.column_names])
    return _write_stage_data(run, stage, dataset)


def save_stage_data(run: Run, stage, dataset):
    """Keep a stage's training rows in `stages/<name>/data` (held-out eval excludes them).
    Every rank calls it; rank 0 writes, and every rank then loads the same rows."""
    from datasets import load_from_disk

    from r1kit.distributed import barrier, is_main

    if is_main():
        _write_stage_data(run, stage, dataset)
    barrier()
    return load_from_disk(str(run.stage_dir(stage.name) / "data"))


def _write_stage_data(run: Run, stage, dataset):
    from datasets import load_from_disk

    path = run.stage_dir(stage.name) / "data"
    tmp = path.with_name(".data.tmp")  # a kill mid-write must not leave a half dataset to resume from
    shutil.rmtree(tmp, ignore_errors=True)
    dataset.save_to_disk(str(tmp))
    tmp.rename(path)
    return load_from_disk(str(path))


def _tokens_hook(meter, **per_token: float):
    """Ledger entries from TRL's running `num_tokens` log: each new token adds `per_token`
    (e.g. `train_tokens=1`; GRPO's tokens are generated and then trained on)."""
    state = {"seen": 0}

    def hook(row: dict[str, Any]) -> None:
        if "num_tokens" in row:
            new = int(row["num_tokens"]) - state["seen"]
            state["seen"] = int(row["num_tokens"])
            meter.add(**{key: amount * new for key, amount in per_token.items()})

    return hook


# ---------------------------------------------------------------- stages


def run_pretrain(run: Run, stage, meter) -> None:
    """The tiny world's base model: a char tokenizer and a preset model, trained as a plain LM
    on answer-only arithmetic plus the retention skills. Cached on disk by its config."""
    from r1kit.distributed import broadcast, is_main, save_trained
    from r1kit.models import build_char_tokenizer, build_tiny_model, count_parameters
    from r1kit.train import train_sft

    recipe, out = run.recipe, run.stage_dir(stage.name) / "model"
    preset = stage.preset or recipe.model.preset
    key = hashlib.sha256(json.dumps({"preset": preset, "stage": stage.model_dump(mode="json", exclude={"name", "preset"}),
                                     "seed": recipe.seed, "format": 1}, sort_keys=True).encode()).hexdigest()[:16]
    cached = TINY_WORLD_CACHE / "base" / key
    if broadcast((cached / "config.json").is_file()):  # every rank takes rank 0's answer
        run.console.print(f"using the cached base model {cached}")
        if is_main():
            shutil.copytree(cached, out, dirs_exist_ok=True)
            for name in ("metrics.jsonl", "ledger.json"):
                if (cached / name).exists():
                    shutil.copy(cached / name, run.stage_dir(stage.name) / name)
        return
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(preset, tokenizer, seed=recipe.seed)
    meter.add(parameters=count_parameters(model))
    dataset = stage_data(run, stage, style=stage.data.style or "answer")
    metrics = run.stage_dir(stage.name) / "metrics.jsonl"
    trainer = train_sft(model, tokenizer, dataset, output_dir=run.stage_dir(stage.name) / "checkpoints",
                        train=stage.train, seed=recipe.seed, completion_only=False, metrics_path=metrics,
                        on_log=_tokens_hook(meter, train_tokens=1))
    save_trained(trainer, tokenizer, out, prompt_info={"style": "answer", "chat": False})
    if is_main():
        shutil.copytree(out, cached, dirs_exist_ok=True)
        shutil.copy(metrics, cached / "metrics.jsonl")


def load_student(run: Run, stage, meter):
    """The model a training stage starts from (`from:`), metered, with the recipe's LoRA."""
    from r1kit.models import apply_lora, count_parameters, load_model

    model, tokenizer = load_model(run.model_path(stage.from_), dtype=run.recipe.model.dtype)
    meter.add(parameters=count_parameters(model))
    if run.recipe.model.lora:
        model = apply_lora(model, **run.recipe.model.lora)
    return model, tokenizer


def run_sft(run: Run, stage, meter) -> None:
    model, tokenizer = load_student(run, stage, meter)
    style = stage.data.style or run.recipe.style
    dataset = stage_data(run, stage, style=style)
    _sft_on(run, stage, meter, model, tokenizer, dataset, style)


def _sft_on(run: Run, stage, meter, model, tokenizer, dataset, style: str) -> None:
    from r1kit.distributed import save_trained
    from r1kit.models import count_parameters
    from r1kit.train import train_sft

    train = dict(stage.train)
    if stage.flops_budget:
        from r1kit.train.budget import row_lengths, rows_per_step, sft_steps
        from r1kit.train.sft import SFT_DEFAULTS

        train["max_steps"] = sft_steps(stage.flops_budget, count_parameters(model), row_lengths(dataset, tokenizer),
                                       rows_per_step(train, SFT_DEFAULTS))
        run.console.print(f"FLOPs budget {stage.flops_budget:.3g} → {train['max_steps']} steps")
    trainer = train_sft(model, tokenizer, dataset, output_dir=run.stage_dir(stage.name) / "checkpoints",
                        train=train, seed=run.recipe.seed, metrics_path=run.stage_dir(stage.name) / "metrics.jsonl",
                        on_log=_tokens_hook(meter, train_tokens=1))
    save_trained(trainer, tokenizer, run.stage_dir(stage.name) / "model",
                 prompt_info={"style": style, "chat": run.recipe.chat})


def run_grpo(run: Run, stage, meter) -> None:
    from r1kit.distributed import save_trained
    from r1kit.models import read_prompt_info
    from r1kit.train import train_grpo

    recipe = run.recipe
    source = run.model_path(stage.from_)
    model, tokenizer = load_student(run, stage, meter)
    info = read_prompt_info(source) or {}
    style = stage.data.style or (info.get("style") if info.get("style") not in (None, "answer") else None) or recipe.style
    dataset = stage_data(run, stage, style=style, drop=("completion",))
    # With beta > 0 TRL rebuilds the reference model from the path, so hand it the path.
    target = source if stage.train.get("beta", 0.0) and not recipe.model.lora else model
    from r1kit.train.grpo import GRPO_DEFAULTS

    train, callbacks = budgeted(run, stage, model, tokenizer, dataset, GRPO_DEFAULTS)
    trainer = train_grpo(target, tokenizer, dataset, output_dir=run.stage_dir(stage.name) / "checkpoints",
                         rewards=stage.rewards, train=train, seed=recipe.seed,
                         metrics_path=run.stage_dir(stage.name) / "metrics.jsonl",
                         on_log=_tokens_hook(meter, generated_tokens=1, train_tokens=1), callbacks=callbacks)
    save_trained(trainer, tokenizer, run.stage_dir(stage.name) / "model",
                 prompt_info={"style": style, "chat": recipe.chat})


def budgeted(run: Run, stage, model, tokenizer, dataset, defaults: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """For trainers that generate: with a FLOPs budget, run to a step ceiling and stop on the budget."""
    train = dict(stage.train)
    if not stage.flops_budget:
        return train, []
    from r1kit.models import count_parameters
    from r1kit.train.budget import FlopsBudget, rows_per_step, step_ceiling

    shortest = min(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in _prompt_texts(dataset, tokenizer))
    parameters = count_parameters(model)
    train.setdefault("logging_steps", 1)  # the budget is checked every step; TRL counts tokens as it generates
    train["max_steps"] = step_ceiling(stage.flops_budget, parameters, shortest + 1, rows_per_step(train, defaults))
    run.console.print(f"FLOPs budget {stage.flops_budget:.3g}: training stops when it is spent")
    return train, [FlopsBudget(stage.flops_budget, parameters)]


def _prompt_texts(dataset, tokenizer) -> list[str]:
    prompts = dataset["prompt"]
    if prompts and isinstance(prompts[0], list):
        return [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    return prompts


def teacher_spec(run: Run, teacher: str) -> str:
    """A stage's `teacher:` as a `load_teacher` spec: a backend spec as given, a path as a local
    model, anything else as the name of an earlier stage (see `recipe.stage_inputs`)."""
    if ":" in teacher:
        return teacher
    return f"local:{teacher if '/' in teacher else run.model_path(teacher)}"


def run_collect(run: Run, stage, meter) -> None:
    """Rejection sampling: the teacher answers, the verifier keeps what is right."""
    from rich.progress import Progress

    from r1kit.models import count_parameters
    from r1kit.teachers import load_teacher
    from r1kit.teachers.collect import collect, summary_table
    from r1kit.teachers.local import LocalTeacher

    teacher = load_teacher(teacher_spec(run, stage.teacher), **stage.teacher_options)
    if isinstance(teacher, LocalTeacher):  # its generated tokens cost 2·N each (an API's cost is not ours to know)
        meter.add(parameters=count_parameters(teacher.model))
    recipe, data = run.recipe, stage.data
    with Progress(console=run.console, transient=True) as progress:
        bar = progress.add_task(f"{stage.name}: teacher answers", total=data.count)
        summary = collect(teacher, task=data.task or recipe.task, levels=data.levels, count=data.count,
                          samples_per_problem=stage.samples_per_problem, out=run.stage_dir(stage.name) / "traces",
                          seed=recipe.seed, max_tokens=stage.max_tokens, temperature=stage.temperature,
                          progress=lambda n: progress.advance(bar, n))
    meter.add(generated_tokens=summary.tokens or 0)
    run.console.print(summary_table(summary))


def run_distill(run: Run, stage, meter) -> None:
    recipe = run.recipe
    model, tokenizer = load_student(run, stage, meter)
    if stage.mode == "sequence":
        from r1kit.teachers.collect import load_summary, traces_dataset

        traces = run.recipe.stage(stage.traces)
        folder = run.stage_dir(traces.name) / "traces"
        style = json.loads((folder / "collect.json").read_text())["style"]  # what the teacher was asked in
        if not load_summary(folder).traces_rows:
            # A result, not an error: the arm is reported as its untouched base, and the run goes on.
            from r1kit.models import save_model

            run.console.print(f"[bold yellow]warning:[/] the teacher of {traces.name!r} had no answer verified; "
                              f"{stage.name!r} is its base model unchanged (see {folder / 'summary.json'})")
            save_model(model, tokenizer, run.stage_dir(stage.name) / "model", prompt_info={"style": style, "chat": recipe.chat})
            return
        dataset = traces_dataset(folder, conversational=recipe.chat)
        dataset = save_stage_data(run, stage, dataset.shuffle(seed=recipe.seed))
        return _sft_on(run, stage, meter, model, tokenizer, dataset, style)
    _logit_distill(run, stage, meter, model, tokenizer)


def _logit_distill(run: Run, stage, meter, model, tokenizer) -> None:
    from r1kit.distributed import save_trained
    from r1kit.models import count_parameters, load_model, read_prompt_info
    from r1kit.train.distill import DISTILL_DEFAULTS, train_logit_distill

    recipe = run.recipe
    backend, _, teacher_path = teacher_spec(run, stage.teacher).partition(":")
    if backend != "local":
        raise R1kitError(f"stage {stage.name!r}: logit distillation needs the teacher's weights (a stage or a local "
                         f"model), not {stage.teacher!r}; distill from an API with mode: sequence")
    teacher, teacher_tokenizer = load_model(teacher_path, dtype=recipe.model.dtype)
    if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise R1kitError(f"stage {stage.name!r}: logit distillation needs a teacher with the student's tokenizer; "
                         "distill across tokenizers with mode: sequence (verified traces)")
    style = stage.data.style or (read_prompt_info(teacher_path) or {}).get("style") or recipe.style
    dataset = stage_data(run, stage, style=style, drop=("completion",))
    train, callbacks = budgeted(run, stage, model, tokenizer, dataset, DISTILL_DEFAULTS)
    # The student's tokens are generated and trained on (8·N each); the teacher scores them (2·N_teacher).
    on_log = _tokens_hook(meter, generated_tokens=1, train_tokens=1, teacher_flops=2.0 * count_parameters(teacher))
    trainer = train_logit_distill(model, teacher, tokenizer, dataset, output_dir=run.stage_dir(stage.name) / "checkpoints",
                                  train=train, seed=recipe.seed, metrics_path=run.stage_dir(stage.name) / "metrics.jsonl",
                                  on_log=on_log, callbacks=callbacks)
    save_trained(trainer, tokenizer, run.stage_dir(stage.name) / "model", prompt_info={"style": style, "chat": recipe.chat})


def run_eval(run: Run, stage, meter) -> None:
    from rich.progress import Progress

    from r1kit.engines import choose_engine, load_for_eval, parameter_count
    from r1kit.evaluate import GenerationSettings, PromptFormat, evaluate_model, problems_from_jsonl, problems_from_task

    recipe = run.recipe
    engine = choose_engine(stage.engine)
    if stage.jsonl:
        problems = problems_from_jsonl(stage.jsonl, default_task=stage.data.task or recipe.task)
    else:
        problems = problems_from_task(stage.data.task or recipe.task, stage.data.levels, stage.data.count,
                                      recipe.seed, exclude=run.training_questions())
    retention = retention_problems(recipe.seed) if stage.retention and recipe.model.preset else []
    settings = GenerationSettings(max_new_tokens=stage.max_new_tokens, batch_size=stage.batch_size)
    rows, retention_rows, models = [], [], {}
    with Progress(console=run.console, transient=True) as progress:
        for name in stage.models:
            path = run.model_path(name)
            model, tokenizer = load_for_eval(path, engine, dtype=recipe.model.dtype, seed=recipe.seed)
            fmt = PromptFormat.for_model(path, tokenizer)
            task_bar = progress.add_task(f"eval {name}", total=len(problems) + len(retention))
            step = lambda n: progress.advance(task_bar, n)  # noqa: E731
            result = evaluate_model(model, tokenizer, problems, name=name, prompt_format=fmt, k=stage.k,
                                    settings=settings, progress=step)
            meter.add(generated_tokens=result.generated_tokens + result.prompt_tokens, parameters=parameter_count(model))
            summary = result.as_dict()
            models[name] = {**summary, "samples": result.samples}
            rows.extend({"model": name, "level": int(level), **{k: v for k, v in s.items()}}
                        for level, s in summary["by_level"].items())
            rows.append({"model": name, "level": "all", **{k: v for k, v in summary.items() if k not in ("model", "by_level", "by_task")}})
            if retention:
                kept = evaluate_model(model, tokenizer, retention, name=name, prompt_format=fmt, settings=settings, progress=step)
                meter.add(generated_tokens=kept.generated_tokens + kept.prompt_tokens)
                retention_rows.extend({"model": name, "skill": task, **s}
                                      for task, s in kept.as_dict().get("by_task", {}).items())
    write_json(run.stage_dir(stage.name) / "eval.json", {"rows": rows, "retention": retention_rows, "models": models})
    show_table(run.console, rows, retention_rows)


def run_lm_eval(run: Run, stage, meter) -> None:
    """General-ability retention: lm-eval tasks on each model; the first model is the baseline."""
    from r1kit import lmeval

    lmeval.task_manager(stage.tasks, stage.include_path)  # an unknown task fails before any model loads
    models = {}
    for name in stage.models:
        run.console.print(f"lm-eval: {name} on {', '.join(stage.tasks)}")
        models[name] = lmeval.run_lm_eval(run.model_path(name), stage.tasks, include_path=stage.include_path,
                                          limit=stage.limit, num_fewshot=stage.num_fewshot, batch_size=stage.batch_size,
                                          dtype=run.recipe.model.dtype, meter=meter)
    write_json(run.stage_dir(stage.name) / "lm_eval.json", {"tasks": stage.tasks, "models": models})
    lmeval.show_lm_eval(run.console, models)


def retention_problems(seed: int, per_skill: int = 60):
    from r1kit.evaluate import problems_from_task
    from r1kit.tasks.skills import SKILLS

    return [p for skill in SKILLS for p in problems_from_task(skill, [1, 2, 3], per_skill, seed)]


def show_table(console, rows: list[dict], retention_rows: list[dict]) -> None:
    from rich.table import Table

    models = list(dict.fromkeys(r["model"] for r in rows))
    levels = list(dict.fromkeys(str(r["level"]) for r in rows))
    table = Table(title="held-out accuracy (greedy) [95% CI]")
    table.add_column("model")
    for level in levels:
        table.add_column(f"L{level}" if level != "all" else "all", justify="right")
    by = {(r["model"], str(r["level"])): r for r in rows}
    for model in models:
        cells = []
        for level in levels:
            r = by.get((model, level))
            cells.append(f"{r['accuracy']:.0%} [{r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}]" if r else "")
        table.add_row(model, *cells)
    console.print(table)
    if retention_rows:
        skills = list(dict.fromkeys(r["skill"] for r in retention_rows))
        keep = Table(title="retention of the base model's other skills")
        keep.add_column("model")
        for skill in skills:
            keep.add_column(skill, justify="right")
        by = {(r["model"], r["skill"]): r for r in retention_rows}
        for model in models:
            keep.add_row(model, *[f"{by[(model, s)]['accuracy']:.0%}" if (model, s) in by else "" for s in skills])
        console.print(keep)


def print_summary(console, results: dict[str, Any]) -> None:
    """The one screen a user reads at the end: accuracy, retention, and what it all cost."""
    if results.get("evals"):
        show_table(console, results["evals"], results.get("retention", []))
    for data in (results.get("lm_eval") or {}).values():
        from r1kit.lmeval import show_lm_eval

        show_lm_eval(console, data["models"])
    totals = results["ledger"]["total_all"]
    console.print(f"cost of everything run: {totals['wall_s']:.0f} s wall, {totals['cpu_s']:.0f} s CPU, "
                  f"{totals['train_tokens']:,} training tokens, {totals['flops'] / 1e12:.2f} TFLOP (est.)")


def run_report(run: Run, stage, meter) -> None:
    from r1kit.report import write_report

    run.write_results()
    paths = write_report(run.dir)
    run.console.print(f"report: {paths[0]} and {paths[1]}")
