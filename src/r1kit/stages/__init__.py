"""The stage table: one unit per stage kind, each owning its inputs, its outputs and the reading
of its own artifact. `STAGES[kind].run(run, stage, meter)` does the work in the run directory
(`r1kit.rundir.RunDir`) and tells the meter what it processed; `STAGES[kind].read(run, stage)` is
the stage's part of results.json (`{}` until it has run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1kit.ledger import Meter
from r1kit.rundir import RunDir
from r1kit.stages.collect import read_collect, run_collect
from r1kit.stages.common import read_curves
from r1kit.stages.distill import run_distill
from r1kit.stages.evaluation import read_eval, run_eval
from r1kit.stages.grpo import run_grpo
from r1kit.stages.lm_eval import read_lm_eval, run_lm_eval
from r1kit.stages.pretrain import run_pretrain
from r1kit.stages.report import run_report
from r1kit.stages.sft import run_sft


def _nothing(run: RunDir, stage) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class StageKind:
    run: Callable[[RunDir, Any, Meter], None]
    read: Callable[[RunDir, Any], dict[str, Any]] = _nothing


STAGES: dict[str, StageKind] = {
    "pretrain": StageKind(run_pretrain, read_curves),
    "sft": StageKind(run_sft, read_curves),
    "grpo": StageKind(run_grpo, read_curves),
    "collect": StageKind(run_collect, read_collect),
    "distill": StageKind(run_distill, read_curves),
    "eval": StageKind(run_eval, read_eval),
    "lm_eval": StageKind(run_lm_eval, read_lm_eval),
    "report": StageKind(run_report),
}
