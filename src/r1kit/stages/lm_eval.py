"""`lm_eval`: general-ability retention. lm-evaluation-harness tasks on each listed model; the
first model is the baseline the report compares the others with."""

from __future__ import annotations

from typing import Any

from r1kit.files import read_json, write_json
from r1kit.rundir import RunDir

LM_EVAL_FILE = "lm_eval.json"


def run_lm_eval(run: RunDir, stage, meter) -> None:
    from r1kit import lmeval
    from r1kit.report import print_lm_eval

    lmeval.task_manager(stage.tasks, stage.include_path)  # an unknown task fails before any model loads
    models = {}
    for name in stage.models:
        run.console.print(f"lm-eval: {name} on {', '.join(stage.tasks)}")
        models[name] = lmeval.run_lm_eval(run.model_path(name), stage.tasks, include_path=stage.include_path,
                                          limit=stage.limit, num_fewshot=stage.num_fewshot, batch_size=stage.batch_size,
                                          dtype=run.recipe.model.dtype, meter=meter)
    write_json(run.stage_dir(stage.name) / LM_EVAL_FILE, {"tasks": stage.tasks, "models": models})
    print_lm_eval(run.console, models)


def read_lm_eval(run: RunDir, stage) -> dict[str, Any]:
    path = run.stage_dir(stage.name) / LM_EVAL_FILE
    return {"lm_eval": {stage.name: read_json(path)}} if path.exists() else {}
