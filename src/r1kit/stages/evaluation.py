"""`eval`: every listed model on the same held-out problems (no question any stage of the run
trained on), greedy pass@1 (and with k > 1 sampled@1, pass@k and maj@k at the stage's temperature),
with the retention skills of the tiny world.
`stages/<name>/eval.json` keeps the tables and every problem's row (what the model wrote)."""

from __future__ import annotations

from typing import Any

from r1kit.files import read_json, write_json
from r1kit.rundir import RunDir

EVAL_FILE = "eval.json"


def run_eval(run: RunDir, stage, meter) -> None:
    from rich.progress import Progress

    from r1kit.engines import GenerationSettings, choose_engine, load_for_inference, parameter_count
    from r1kit.evaluate import evaluate_model, problems_from_jsonl, problems_from_task, sampled_problems
    from r1kit.prompting import PromptFormat, prompt_format
    from r1kit.report import print_accuracy, print_comparisons

    recipe = run.recipe
    engine = choose_engine(stage.engine)
    if stage.jsonl:
        problems = problems_from_jsonl(stage.jsonl, default_task=stage.data.task or recipe.task)
    else:
        problems = problems_from_task(recipe.task_for(stage.data), stage.data.levels, stage.data.count,
                                      recipe.seed, exclude=run.training_questions(), shares=stage.data.shares)
    retention = retention_problems(recipe.seed) if stage.retention and recipe.model.preset else []
    settings = GenerationSettings(max_new_tokens=stage.max_new_tokens, batch_size=stage.batch_size,
                                  temperature=stage.temperature)
    sampled = len(sampled_problems(problems, stage.sample_count)) if stage.k > 1 else 0
    sequences = len(problems) + len(retention) + stage.k * sampled
    rows, retention_rows, models, per_problem = [], [], {}, {}
    with Progress(console=run.console, transient=True) as progress:
        overall = progress.add_task("models", total=len(stage.models))
        for name in stage.models:
            path = run.model_path(name)
            model, tokenizer = load_for_inference(path, engine, dtype=recipe.model.dtype, seed=recipe.seed)
            # a base is asked as the recipe's stages ask it, so RL from it is judged under its own prompt
            fmt = prompt_format(path, tokenizer, untrained=PromptFormat(recipe.style, recipe.chat))
            bar = progress.add_task(f"eval {name}", total=sequences)
            step = lambda n: progress.advance(bar, n)  # noqa: E731
            result = evaluate_model(model, tokenizer, problems, name=name, prompt_format=fmt, k=stage.k,
                                    sample_count=stage.sample_count, settings=settings, progress=step)
            meter.add(generated_tokens=result.generated_tokens + result.prompt_tokens, parameters=parameter_count(model))
            rows.extend(result.table_rows())
            models[name] = {**result.as_dict(), "prompt": {"style": fmt.style, "chat": fmt.chat},
                            "examples": result.examples()}
            per_problem[name] = result.problems
            if retention:
                kept = evaluate_model(model, tokenizer, retention, name=name, prompt_format=fmt, settings=settings,
                                      progress=step)
                meter.add(generated_tokens=kept.generated_tokens + kept.prompt_tokens)
                retention_rows.extend(kept.task_rows())
            progress.remove_task(bar)
            progress.advance(overall)
    comparisons = stage_comparisons(recipe, per_problem, stage.temperature, stage.compare)
    write_json(run.stage_dir(stage.name) / EVAL_FILE, {"rows": rows, "retention": retention_rows, "models": models,
                                                        "problems": per_problem, "comparisons": comparisons})
    print_accuracy(run.console, rows, retention_rows)
    print_comparisons(run.console, comparisons)


def read_eval(run: RunDir, stage) -> dict[str, Any]:
    """The eval stage's part of results.json: the tables and a few examples (not every row)."""
    path = run.stage_dir(stage.name) / EVAL_FILE
    if not path.exists():
        return {}
    data = read_json(path)
    return {"evals": data["rows"], "retention": data.get("retention", []), "eval_details": {stage.name: data["models"]},
            "comparisons": data.get("comparisons", [])}


def baseline(recipe, name: str, evaluated) -> str | None:
    """What `name` is compared with: the nearest model it was trained from (`from:` links) that
    this eval also scored, skipping unevaluated steps (d_r1 from d_sft from base: base)."""
    return next((m for m in recipe.started_from(name) if m in evaluated), None)


def stage_comparisons(recipe, per_problem: dict[str, list[dict[str, Any]]], temperature: float = 1.0,
                      extra: list[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """Each model against its baseline on the same problems, then the `extra` pairs [new, baseline],
    per level and pooled: strict, flexible, then (when the eval sampled) sampled@1, pass@k and maj@k,
    whose rows state the temperature."""
    from r1kit.paired import METRICS, compare, metrics_of

    pairs = [(m, baseline(recipe, m, per_problem)) for m in per_problem]
    pairs += [tuple(pair) for pair in extra if tuple(pair) not in pairs]
    rows = [row for m, base in pairs if base for metric in metrics_of(per_problem[m], per_problem[base])
            for row in compare(m, base, per_problem[m], per_problem[base], metric)]
    return [row if row["metric"] in METRICS else {**row, "temperature": temperature} for row in rows]


def retention_problems(seed: int, per_skill: int = 60):
    from r1kit.evaluate import problems_from_task
    from r1kit.tasks.skills import SKILLS

    return [p for skill in SKILLS for p in problems_from_task(skill, [1, 2, 3], per_skill, seed)]
