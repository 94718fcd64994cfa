"""The run directory as stages see it: the recipe, where each stage's files live, and the
console. It is the narrow interface between the pipeline (which walks the stages) and the
stages (which do the work); stages never import the pipeline.

    runs/quickstart/
      manifest.json            resolved recipe, seed, package versions
      stages/<name>/           data/, checkpoints/, model/, metrics.jsonl, the stage's artifact, done.json
      ledger/                  one JSON per stage attempt (cost, even for killed attempts)
      results.json             evals, retention, ledger; rewritten after every stage
      report.md, report.html
"""

from __future__ import annotations

from pathlib import Path

from r1kit.errors import R1kitError
from r1kit.problem import normalize_question
from r1kit.recipe import TRAINING_KINDS, Recipe

DATA = "data"  # a stage's training rows (datasets.save_to_disk), excluded from held-out evaluation
MODEL = "model"  # a stage's trained model


class RunDir:
    def __init__(self, recipe: Recipe, out: str | Path, *, console=None):
        from rich.console import Console

        self.recipe = recipe
        self.dir = Path(out)
        self.console = console or Console(stderr=True)

    def stage_dir(self, name: str) -> Path:
        return self.dir / "stages" / name

    def model_path(self, name: str) -> str:
        """Where the model called `name` lives: a stage's output, or the recipe's own model."""
        if name == "model":
            if self.recipe.model.path is None:
                raise R1kitError("'model' is a tiny preset with no weights yet; read from a pretrain stage instead")
            return self.recipe.model.path
        return str(self.stage_dir(name) / MODEL)

    @property
    def results_path(self) -> Path:
        return self.dir / "results.json"

    def training_questions(self) -> set[str]:
        """Every question any training stage of this run has seen (for held-out evaluation)."""
        from datasets import load_from_disk

        seen: set[str] = set()
        for stage in self.recipe.stages:
            data_dir = self.stage_dir(stage.name) / DATA
            if stage.kind in (*TRAINING_KINDS, "collect") and data_dir.exists():
                seen.update(normalize_question(q) for q in load_from_disk(str(data_dir))["question"])
        return seen
