"""Recipes → stages → one run directory (its layout: `r1kit.rundir`).

The pipeline walks a recipe's stages in order and dispatches each to its unit in the stage
table (`r1kit.stages.STAGES`); it knows no stage's files. Re-running the same command resumes: finished stages are skipped (unless their resolved
config changed, which reruns them and everything after), and an interrupted training stage
continues from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import time
from typing import Any

from r1kit import distributed as dist
from r1kit import ledger
from r1kit.files import read_json, write_json
from r1kit.recipe import TRAINING_KINDS, Recipe, stage_inputs
from r1kit.rundir import RunDir
from r1kit.stages import STAGES


def stage_hash(recipe: Recipe, stage) -> str:
    """What a stage's output depends on: its own config, the recipe-wide settings it reads (the
    recipe's own levels among its data's), and the stages it reads from (through their hashes)."""
    upstream = [stage_hash(recipe, recipe.stage(s)) for s in stage_inputs(stage) if s != "model"]
    payload = {"stage": stage.model_dump(by_alias=True, mode="json"), "seed": recipe.seed, "task": recipe.task,
               "style": recipe.style, "chat": recipe.chat, "model": recipe.model.model_dump(mode="json"),
               "upstream": upstream}
    if hasattr(stage, "data") and (levels := recipe.levels_used(stage.data)):  # absent otherwise: hashes stay
        payload["levels"] = levels
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("r1kit", "torch", "transformers", "trl", "datasets", "accelerate", "peft", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class Run(RunDir):
    """A recipe being run into its directory: which stages are done, running the rest, and the
    results gathered from every stage's artifact."""

    def done(self, stage) -> bool:
        marker = self.stage_dir(stage.name) / "done.json"
        return marker.is_file() and read_json(marker).get("hash") == stage_hash(self.recipe, stage)

    # ------------------------------------------------------------ running

    def execute(self) -> dict[str, Any]:
        """Under several processes (accelerate launch) every rank walks the same stages; rank 0
        alone writes the run directory and the others wait for it at barriers."""
        main = dist.is_main()
        if main:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_json(self.dir / "manifest.json", {
                "recipe": self.recipe.model_dump(by_alias=True, mode="json"), "seed": self.recipe.seed,
                "versions": package_versions(), "command": sys.argv, "processes": dist.world_size(),
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "stage_hashes": {s.name: stage_hash(self.recipe, s) for s in self.recipe.stages},
            })
        todo = dist.broadcast(self.pending())  # every rank resumes from the same stage
        for stage in self.recipe.stages:
            if stage.name not in todo:
                self.console.print(f"[dim]✓ {stage.name} ({stage.kind}) already done, skipped[/dim]")
                continue
            if main:
                self.clear_stale(stage)
                write_json(self.stage_dir(stage.name) / "started.json", {"hash": stage_hash(self.recipe, stage)})
            dist.barrier()
            self.console.rule(f"{stage.name} ({stage.kind})")
            self.run_stage(stage)
            if main:
                write_json(self.stage_dir(stage.name) / "done.json", {"hash": stage_hash(self.recipe, stage),
                                                                        "finished": time.time()})
                self.write_results()  # after every stage, so an interrupted run still reports what it did
        if main and not todo:
            self.write_results()
        dist.barrier()
        return read_json(self.results_path)

    def pending(self) -> list[str]:
        """The stages to run: from the first one not done (with its current config) to the end."""
        names = [s.name for s in self.recipe.stages]
        first = next((i for i, s in enumerate(self.recipe.stages) if not self.done(s)), len(names))
        return names[first:]

    def clear_stale(self, stage) -> None:
        """A stage directory left by another config (finished or interrupted) is removed, so
        nothing resumes from checkpoints of a different recipe or a different upstream model."""
        directory = self.stage_dir(stage.name)
        started = directory / "started.json"
        if not directory.exists():
            return
        same = started.is_file() and read_json(started).get("hash") == stage_hash(self.recipe, stage)
        if not same or (directory / "done.json").exists():
            shutil.rmtree(directory)

    def run_stage(self, stage) -> None:
        # Training runs on every rank (TRL/accelerate split the work); everything else on rank 0.
        # Each rank meters its own attempt file: a rank waiting at the barrier still holds its device.
        attempt = dist.broadcast(ledger.new_attempt_id())
        with ledger.Meter(self.dir, stage.name, stage.kind, attempt=attempt, rank=dist.rank(),
                          world_size=dist.world_size()) as meter:
            if stage.kind in TRAINING_KINDS or dist.is_main():
                STAGES[stage.kind].run(self, stage, meter)
            dist.barrier()

    # ------------------------------------------------------------ results

    def results(self) -> dict[str, Any]:
        """Every stage's part (`STAGES[kind].read`), merged in recipe order, with the ledger."""
        parts: dict[str, Any] = {"evals": [], "retention": [], "eval_details": {}, "comparisons": [], "lm_eval": {},
                                 "collections": {}, "curves": {}}
        for stage in self.recipe.stages:
            for key, value in STAGES[stage.kind].read(self, stage).items():
                if isinstance(value, list):
                    parts[key].extend(value)
                else:
                    parts[key].update(value)
        spent = ledger.read(self.dir)
        if self.recipe.levels:  # what the report's level columns mean where the recipe defines them
            parts["levels"] = self.recipe.model_dump(mode="json")["levels"]
        return {"recipe": self.recipe.name, **parts, "ledger": spent, "costs": self.costs(spent)}

    def costs(self, spent: dict[str, Any]) -> dict[str, Any]:
        """Per evaluated model: `own`, the final attempts of the stages that trained its weights
        after the shared base (what an ablation arm gets an equal budget of), and `lineage`, every
        attempt of every stage it needed (base, teacher training, trace collection, retries)."""
        out = {}
        for stage in self.recipe.stages:
            if stage.kind != "eval":
                continue
            for name in stage.models:
                if name != "model":
                    own, lineage = self.own_stages(name), self.lineage(name)
                    out[name] = {"own_stages": own, "lineage_stages": lineage,
                                 "own": ledger.cost(spent, set(own), final_only=True),
                                 "lineage": ledger.cost(spent, set(lineage))}
        return out

    def own_stages(self, name: str) -> list[str]:
        chain = [name, *self.recipe.started_from(name)]
        return [s for s in chain if s != "model" and self.recipe.stage(s).kind != "pretrain"][::-1]

    def lineage(self, name: str) -> list[str]:
        seen: list[str] = []

        def visit(stage_name: str) -> None:
            if stage_name == "model" or stage_name in seen:
                return
            for source in stage_inputs(self.recipe.stage(stage_name)):
                visit(source)
            seen.append(stage_name)

        visit(name)
        return seen

    def write_results(self) -> dict[str, Any]:
        results = self.results()
        write_json(self.results_path, results)
        return results
