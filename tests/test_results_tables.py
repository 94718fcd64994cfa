"""Every results table in README.md and docs/ is what scripts/results_tables.py makes from the
committed run artifacts under results/; a hand-edited or stale table fails here."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)
RUNS = sorted(path.name for path in (ROOT / "results").iterdir() if path.is_dir())


def test_every_table_agrees_with_its_artifacts():
    stale = [str(page.relative_to(ROOT)) for page in tables.stale_pages()]
    assert not stale, f"regenerate with: python scripts/results_tables.py ({', '.join(stale)})"


def test_a_hand_edited_number_is_caught():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = tables.BLOCK.search(readme)
    assert block, "the README reports a results table"
    edited = readme[:block.start("body")] + re.sub(r"\d\.\d", "9.9", block["body"], count=1) + readme[block.end("body"):]
    assert edited != readme
    assert tables.render(edited, {}) == readme


@pytest.mark.parametrize("name", RUNS)
def test_each_reported_run_is_stamped_small_and_used(name):
    folder = ROOT / "results" / name
    stamp = json.loads((folder / "stamp.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", stamp["commit"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", stamp["date"])
    assert stamp["cpu"] and stamp["cores"] >= 1 and stamp["command"].startswith("r1kit ")
    assert {path.name for path in folder.iterdir()} == {*tables.ARTIFACTS, "stamp.json"}  # never weights
    assert sum(path.stat().st_size for path in folder.iterdir()) < 2_000_000
    used = [page for page in tables.pages() if f"<!-- results:{name}" in page.read_text(encoding="utf-8")]
    assert used, f"results/{name} is reported by no table"


def test_collect_copies_the_small_artifacts_and_stamps_them(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "quickstart"
    (run / "stages" / "sft" / "model").mkdir(parents=True)
    (run / "stages" / "sft" / "model" / "model.safetensors").write_bytes(b"weights")
    for file in tables.ARTIFACTS:
        shutil.copyfile(ROOT / "results" / RUNS[0] / file, run / file)
    monkeypatch.setattr(tables, "RESULTS", tmp_path / "results")
    tables.collect(run, "mine", "0" * 40, "r1kit run quickstart")
    collected = tmp_path / "results" / "mine"
    assert sorted(path.name for path in collected.iterdir()) == sorted([*tables.ARTIFACTS, "stamp.json"])
    stamp = json.loads((collected / "stamp.json").read_text())
    assert stamp["command"] == "r1kit run quickstart" and stamp["commit"] == "0" * 40
    assert stamp["versions"] == json.loads((run / "manifest.json").read_text())["versions"]
    with pytest.raises(SystemExit, match="not a finished run"):
        tables.collect(tmp_path, "other", None, None)


def test_the_sampled_views_read_an_eval_with_k_above_1():
    rows = [{"model": m, "level": level, "n": 8, "sampled_n": 4, "temperature": 1.0, "sampled@1": share,
             "sampled@1_ci95": [share / 2, (1 + share) / 2], "pass@8": 0.75, "pass@8_ci95": [0.3, 0.95], "maj@8": 0.5,
             "maj@8_ci95": [0.2, 0.8]} for m, share in (("sft", 0.25), ("grpo", 0.5)) for level in (1, "all")]
    comparison = {"model": "grpo", "baseline": "sft", "metric": "sampled@1", "diff": 0.25, "low": 0.1, "high": 0.4,
                  "verdict": "gain"}
    run = {"name": "mine", "results": {"evals": rows, "comparisons": [{**comparison, "level": 1},
                                                                      {**comparison, "level": "all"}]}}
    assert "| grpo | 50.0% [25.0, 75.0] / 75.0% / 50.0% | 50.0% [25.0, 75.0] / 75.0% / 50.0% |" in tables.sampled(run)
    assert "| model | level 1 (n=4) | all (n=4) |" in tables.sampled(run)
    assert "At temperature 1: sampled@1 / pass@8 / maj@8" in tables.sampled(run)
    assert "| grpo vs sft | +25.0 [+10.0, +40.0] **gain** | +25.0 [+10.0, +40.0] **gain** |" in tables.VIEWS["bought-sampled"](run)
    with pytest.raises(SystemExit, match="no sampled metrics"):
        tables.sampled({"name": "k1", "results": {"evals": [{k: v for k, v in rows[0].items() if "@" not in k}]}})
