"""`lm_eval`: general-ability retention. lm-evaluation-harness tasks on each listed model; the
first model is the baseline every other one is compared with, item by item (`r1kit.paired`).
`stages/<name>/lm_eval.json` keeps the scores, the comparisons and every item's 0/1 metrics."""

from __future__ import annotations

from typing import Any

from r1kit.files import read_json, write_json
from r1kit.rundir import RunDir

LM_EVAL_FILE = "lm_eval.json"


def run_lm_eval(run: RunDir, stage, meter) -> None:
    from r1kit import lmeval
    from r1kit.report import print_lm_eval

    lmeval.task_manager(stage.tasks, stage.include_path)  # an unknown task fails before any model loads
    models, items, groups = {}, {}, {}
    for name in stage.models:
        run.console.print(f"lm-eval: {name} on {', '.join(stage.tasks)}")
        out = lmeval.evaluate(run.model_path(name), stage.tasks, include_path=stage.include_path, limit=stage.limit,
                              num_fewshot=stage.num_fewshot, batch_size=stage.batch_size,
                              dtype=run.recipe.model.dtype, meter=meter, log_samples=True)
        models[name], items[name] = lmeval.summarize(out), lmeval.item_results(out)
        groups = out.get("group_subtasks", {})
    comparisons = lmeval.compare_items(items, groups)  # before writing: mismatched items leave no file
    write_json(run.stage_dir(stage.name) / LM_EVAL_FILE, {"tasks": stage.tasks, "models": models, "groups": groups,
                                                          "comparisons": comparisons, "items": items})
    print_lm_eval(run.console, models, comparisons)


def read_lm_eval(run: RunDir, stage) -> dict[str, Any]:
    """The stage's part of results.json: scores and comparisons (the per-item rows stay in lm_eval.json)."""
    path = run.stage_dir(stage.name) / LM_EVAL_FILE
    if not path.exists():
        return {}
    data = read_json(path)
    return {"lm_eval": {stage.name: {key: value for key, value in data.items() if key != "items"}}}
