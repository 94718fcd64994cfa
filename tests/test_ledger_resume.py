"""The true-cost ledger under interruption: kill SFT and GRPO mid-stage, resume, and every cost
figure of the work in the final weights matches an uninterrupted run; metrics stay continuous."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from r1kit import ledger

RECIPE = """
name: resume-cost
model: {preset: tiny-1m}
stages:
  - {name: base, kind: pretrain, data: {levels: 1-2, count: 400}, train: {max_steps: 2}}
  - name: sft
    kind: sft
    from: base
    data: {levels: 1-2, count: 800}
    train: {max_steps: 20, per_device_train_batch_size: 16, logging_steps: 1, save_steps: 5}
  - name: grpo
    kind: grpo
    from: sft
    data: {levels: 1-2, count: 64}
    rewards: {accuracy: 1.0}
    train: {max_steps: 8, per_device_train_batch_size: 8, num_generations: 4, max_completion_length: 24,
            logging_steps: 1, save_steps: 2}
"""
COMMAND = [sys.executable, "-c", "from r1kit.cli import run; run()", "run"]
EXACT = ("train_tokens", "generated_tokens", "flops", "student_flops")


def _run(recipe, out, env, kill_at=None):
    """Run the recipe; with `kill_at=(stage, step)`, SIGKILL it once that checkpoint exists."""
    process = subprocess.Popen([*COMMAND, str(recipe), "--out", str(out)], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_at is None:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        return
    stage, step = kill_at
    marker = out / "stages" / stage / "checkpoints" / f"checkpoint-{step}" / ledger.CARRY_FILE
    deadline = time.time() + 600
    while time.time() < deadline and not marker.exists() and process.poll() is None:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert marker.exists(), f"the run ended before {stage}'s checkpoint {step}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume-cost")
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE)
    env = {**os.environ, "R1KIT_CACHE": str(root / "cache")}
    _run(recipe, root / "whole", env)
    _run(recipe, root / "killed", env, kill_at=("sft", 10))
    _run(recipe, root / "killed", env, kill_at=("grpo", 4))
    _run(recipe, root / "killed", env)
    return [json.loads((root / name / "results.json").read_text()) for name in ("whole", "killed")], root


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_own_cost_is_the_same_whether_or_not_the_stage_was_killed(runs, stage):
    (whole, killed), _ = runs
    attempts = [r for r in killed["ledger"]["attempts"] if r["stage"] == stage]
    assert len(attempts) == 2 and [r["status"] for r in attempts] == ["running", "done"]  # the killed one is on record
    assert attempts[0]["wall_s"] > 0 and attempts[0]["train_tokens"] > 0  # a short killed attempt is not lost
    own_whole = ledger.cost(whole["ledger"], {stage}, final_only=True)
    own_killed = ledger.cost(killed["ledger"], {stage}, final_only=True)
    for key in EXACT:
        assert own_killed[key] == own_whole[key], (stage, key)
    # Every attempt's work, the lost part too: at least the work in the weights, never counted twice.
    every = ledger.cost(killed["ledger"], {stage})
    assert own_killed["train_tokens"] <= every["train_tokens"] < 2 * own_killed["train_tokens"]


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_metrics_are_continuous_across_the_resume(runs, stage):
    _, root = runs
    rows = {name: [json.loads(line) for line in (root / name / "stages" / stage / "metrics.jsonl").read_text().splitlines()]
            for name in ("whole", "killed")}
    tokens = {name: [r["num_tokens"] for r in rs if "num_tokens" in r] for name, rs in rows.items()}
    assert tokens["killed"] == tokens["whole"] and tokens["whole"] == sorted(tokens["whole"])
    final = {name: next(r for r in rs if "train_loss" in r)["train_loss"] for name, rs in rows.items()}
    assert final["killed"] == pytest.approx(final["whole"], rel=1e-4)


def test_final_totals_match(runs):
    """(Over the trained stages: the killed run took the whole run's cached base, which cost it nothing.)"""
    (whole, killed), _ = runs
    trained = {"sft", "grpo"}
    for key in EXACT:
        assert (ledger.cost(killed["ledger"], trained, final_only=True)[key]
                == ledger.cost(whole["ledger"], trained, final_only=True)[key]), key
    assert killed["ledger"]["total_final"]["train_tokens"] <= killed["ledger"]["total_all"]["train_tokens"]
