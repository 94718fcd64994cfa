"""The pipeline end to end: the smoke quickstart, resume after a kill, recipe errors, eval on JSONL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1kit import recipe as recipes
from r1kit.errors import R1kitError

ROOT = Path(__file__).resolve().parents[1]


def r1kit(*args, env=None, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-c", "from r1kit.cli import run; run()", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    cache = tmp_path_factory.mktemp("cache")
    result = r1kit("quickstart", "--smoke", "--out", str(out), env={"R1KIT_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    return out, cache, result


def test_smoke_quickstart_writes_every_artifact(smoke_run):
    out, _, _ = smoke_run
    results = json.loads((out / "results.json").read_text())
    models = {row["model"] for row in results["evals"]}
    assert models == {"base", "sft", "grpo"}
    for row in results["evals"]:
        assert set(row) >= {"model", "level", "n", "accuracy", "ci95"}
        assert 0 <= row["ci95"][0] <= row["accuracy"] <= row["ci95"][1] <= 1
    assert {row["level"] for row in results["evals"]} == {1, 2, 3, 4, "all"}
    pairs = {(row["model"], row["baseline"]) for row in results["comparisons"]}
    assert pairs == {("sft", "base"), ("grpo", "sft")}  # each stage against the one it started from
    assert all(row["low"] <= row["diff"] <= row["high"] for row in results["comparisons"])
    stages = {row["stage"] for row in results["ledger"]["stages"]}
    assert stages == {"base", "sft", "grpo", "eval", "report"}
    sft = next(r for r in results["ledger"]["stages"] if r["stage"] == "sft")
    assert sft["train_tokens"] > 0 and sft["flops"] > 0 and sft["wall_s"] > 0 and sft["peak_memory_bytes"] > 0
    assert results["ledger"]["total_all"]["flops"] >= results["ledger"]["total_final"]["flops"] > 0
    assert any("reward" in row for row in results["curves"]["grpo"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["versions"]["trl"] and manifest["recipe"]["name"] == "quickstart"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "Cost ledger" in html
    assert "| model |" in (out / "report.md").read_text() and "## What each stage bought" in (out / "report.md").read_text()
    for name in ("base", "sft", "grpo"):
        info = json.loads((out / "stages" / name / "model" / "r1kit.json").read_text())
        assert info["style"] in ("answer", "compact")


def test_rerun_skips_finished_stages_and_base_is_cached(smoke_run, tmp_path):
    out, cache, _ = smoke_run
    again = r1kit("quickstart", "--smoke", "--out", str(out), env={"R1KIT_CACHE": str(cache)})
    assert again.returncode == 0
    assert again.stderr.count("already done") + again.stdout.count("already done") == 5
    # A new run directory reuses the cached base model instead of pre-training again.
    fresh = r1kit("quickstart", "--smoke", "--out", str(tmp_path / "fresh"), "--set", "stages.sft.train.max_steps=2",
                  "--set", "stages.grpo.train.max_steps=1", env={"R1KIT_CACHE": str(cache)})
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert "using the cached base model" in fresh.stdout + fresh.stderr


RESUME_RECIPE = """
name: resume
model: {preset: tiny-1m}
stages:
  - {name: base, kind: pretrain, data: {levels: 1-2, count: 400}, train: {max_steps: 2}}
  - name: sft
    kind: sft
    from: base
    data: {levels: 1-2, count: 2000}
    train: {max_steps: 40, per_device_train_batch_size: 16, logging_steps: 1, save_steps: 5}
"""


def test_resume_after_kill_mid_sft_loses_and_repeats_nothing(tmp_path):
    path = tmp_path / "resume.yaml"
    path.write_text(RESUME_RECIPE)
    out, env = tmp_path / "run", {"R1KIT_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-c", "from r1kit.cli import run; run()", "run", str(path), "--out", str(out)],
                               env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    checkpoints = out / "stages" / "sft" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("checkpoint-1[05]")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(checkpoints.glob("checkpoint-*")), "the run was killed before its first checkpoint"
    assert not (out / "stages" / "sft" / "done.json").exists()

    result = r1kit("run", str(path), "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [json.loads(line)["step"] for line in (out / "stages" / "sft" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 41))  # every step exactly once
    state = json.loads(sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
                       .joinpath("trainer_state.json").read_text())
    assert state["global_step"] == 40
    ledger = json.loads((out / "results.json").read_text())["ledger"]
    sft = next(r for r in ledger["stages"] if r["stage"] == "sft")
    assert sft["attempts"] == 2  # the killed attempt is still paid for
    # Every attempt's seconds include the killed attempt's lost work; the final ones carry what its checkpoint held.
    assert ledger["total_all"]["wall_s"] >= ledger["total_final"]["wall_s"] > 0
    assert ledger["total_all"]["train_tokens"] >= ledger["total_final"]["train_tokens"] > 0


BASE = {"name": "x", "model": {"preset": "tiny-1m"},
        "stages": [{"name": "base", "kind": "pretrain"}, {"name": "sft", "kind": "sft", "from": "base"}]}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.update(modle={}), "unknown key 'modle' (did you mean 'model'?)"),
        (lambda r: r["stages"][1].update(form="base"), "unknown key 'stages.sft.form' (did you mean 'from'?)"),
        (lambda r: r["stages"][1].update(train={"max_step": 3}), "unknown key 'stages.sft.train.max_step' (not a SFTConfig field) (did you mean 'max_steps'?)"),
        (lambda r: r["stages"][1].update(train={"learning_rate": "fast"}), "stages.sft.train.learning_rate: input should be a valid number, got 'fast'"),
        (lambda r: r["stages"][1].update(train={"learning_rate": -1.0}), "learning_rate must be positive"),
        (lambda r: r["stages"][1].update({"from": "bse"}), "reads 'bse', which no earlier stage makes (did you mean 'base'?)"),
        (lambda r: r["stages"][1].update(data={"levels": "2-9"}), "stages.sft.data: arithmetic has levels 1..6, got 9"),
        (lambda r: r["stages"][1].update(data={"count": 0}), "stages.sft.data.count"),
        (lambda r: r.update(model={"preset": "tiny-9m"}), "unknown preset 'tiny-9m'"),
        (lambda r: r.update(model={"preset": "tiny-1m", "path": "x"}), "set exactly one of model.preset"),
        (lambda r: r.update(style="fancy"), "unknown style 'fancy'"),
        (lambda r: r["stages"].append({"name": "g", "kind": "grpo", "from": "sft", "rewards": {"acuracy": 1}}), "unknown reward 'acuracy'"),
        (lambda r: r["stages"].append({"name": "sft", "kind": "eval"}), "stage name 'sft' is used twice"),
        (lambda r: r["stages"][1].update(lora={"rank": 8}), "unknown LoRA key 'rank'; LoRA takes r, alpha, dropout, target_modules"),
        (lambda r: r["model"].update(lora={"alpah": 8}), "unknown LoRA key 'alpah' (did you mean 'alpha'?)"),
        (lambda r: r["stages"][1].update(lora=True), "stages.sft.lora"),
        (lambda r: r["stages"].append({"name": "e", "kind": "eval", "models": ["base", "sft"],
                                       "compare": [["sft", "sfy"]]}), "compare ['sft', 'sfy'] needs two different"),
    ],
)
def test_recipe_errors_are_one_clear_message(change, message):
    import copy

    raw = copy.deepcopy(BASE)
    change(raw)
    with pytest.raises(R1kitError) as error:
        recipes.validate(raw)
    assert message in str(error.value)


def test_bad_recipe_on_the_command_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {preset: tiny-1m}\nstages:\n  - {name: sft, kind: sft, trian: {}}\n")
    result = r1kit("run", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {bad}: unknown key 'stages.sft.trian' (did you mean 'train'?)"]
    assert not (tmp_path / "out").exists()  # nothing started
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert "is not valid YAML at line" in r1kit("run", str(broken)).stderr
    assert "no stage named 'sfx' (did you mean 'sft'?)" in r1kit("quickstart", "--set", "stages.sfx.train.max_steps=1").stderr


def test_eval_on_jsonl(smoke_run, tmp_path):
    out, _, _ = smoke_run
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"question": "2 + 3", "answer": "5", "level": 1}, {"question": "4 * 5 - 1", "answer": "19", "level": 2},
        {"question": "7 - 9", "answer": "-2"}]) + "\n")
    result = r1kit("eval", "--model", str(out / "stages" / "sft" / "model"), "--data", str(data), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n"] == 3 and set(report["by_level"]) == {"1", "2"}  # a row's level defaults to 1
    assert [(r["question"], r["gold"]) for r in report["problems"]] == [("2 + 3", "5"), ("4 * 5 - 1", "19"), ("7 - 9", "-2")]
    assert all(set(r) >= {"level", "completion", "extracted", "correct", "flexible_correct"} for r in report["problems"])
    assert all(set(v) >= {"n", "accuracy", "ci95"} for v in report["by_level"].values())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1"}\n')
    failed = r1kit("eval", "--model", str(out / "stages" / "sft" / "model"), "--data", str(bad))
    assert failed.returncode == 1 and "bad.jsonl:1: 'answer' must be a non-empty string or a number" in failed.stderr


def test_a_changed_stage_does_not_resume_from_old_checkpoints(tmp_path):
    from r1kit.files import write_json
    from r1kit.pipeline import Run, stage_hash

    recipe = recipes.validate({**BASE, "stages": [*BASE["stages"], {"name": "eval", "kind": "eval", "models": ["sft"]}]})
    run = Run(recipe, tmp_path / "run")
    sft = recipe.stage("sft")
    partial = run.stage_dir("sft") / "checkpoints" / "checkpoint-5"
    partial.mkdir(parents=True)
    write_json(run.stage_dir("sft") / "started.json", {"hash": stage_hash(recipe, sft)})
    run.clear_stale(sft)
    assert partial.exists()  # same config: an interrupted stage resumes
    changed = recipes.validate({**BASE, "stages": [BASE["stages"][0], {**BASE["stages"][1], "train": {"learning_rate": 0.1}}]})
    Run(changed, tmp_path / "run").clear_stale(changed.stage("sft"))
    assert not run.stage_dir("sft").exists()  # another config: start over
