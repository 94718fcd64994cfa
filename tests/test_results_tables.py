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
