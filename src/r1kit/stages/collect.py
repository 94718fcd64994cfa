"""`collect`: rejection sampling. The teacher answers, the verifier keeps what is right; the
kept traces (and why the rest was refused) live in `stages/<name>/traces`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1kit.files import read_json
from r1kit.rundir import RunDir
from r1kit.stages.common import resolve_teacher

TRACES = "traces"


def traces_dir(run: RunDir, name: str) -> Path:
    return run.stage_dir(name) / TRACES


def traces_style(run: RunDir, name: str) -> str:
    """The style the teacher of collect stage `name` was asked in: its traces are in it."""
    return read_json(traces_dir(run, name) / "collect.json")["style"]


def run_collect(run: RunDir, stage, meter) -> None:
    from rich.progress import Progress

    from r1kit.models import count_parameters
    from r1kit.report import print_collection
    from r1kit.teachers import load_teacher
    from r1kit.teachers.collect import collect
    from r1kit.teachers.local import LocalTeacher

    teacher = load_teacher(resolve_teacher(run, stage.teacher), **stage.teacher_options)
    if isinstance(teacher, LocalTeacher):  # its generated tokens cost 2·N each (an API's cost is not ours to know)
        meter.add(parameters=count_parameters(teacher.model))
    recipe, data = run.recipe, stage.data
    with Progress(console=run.console, transient=True) as progress:
        bar = progress.add_task(f"{stage.name}: teacher answers", total=data.count)
        summary = collect(teacher, task=recipe.task_for(data), levels=data.levels, count=data.count,
                          samples_per_problem=stage.samples_per_problem, out=traces_dir(run, stage.name),
                          seed=recipe.seed, max_tokens=stage.max_tokens, temperature=stage.temperature,
                          shares=data.shares, progress=lambda n: progress.advance(bar, n))
    meter.add(generated_tokens=summary.tokens or 0)
    print_collection(run.console, stage.name, summary.as_dict())


def read_collect(run: RunDir, stage) -> dict[str, Any]:
    path = traces_dir(run, stage.name) / "summary.json"
    return {"collections": {stage.name: read_json(path)}} if path.exists() else {}
