"""Datasets: columns, splits without shared questions, determinism, JSONL, atomic writes."""

import json

import pytest

from r1kit import data
from r1kit.errors import R1kitError
from r1kit.problem import normalize_question


def test_build_columns_and_no_leak(tmp_path):
    dataset = data.build("arithmetic", [1, 2, 3], 3000, style="compact", seed=0)
    assert set(data.COLUMNS) <= set(dataset["train"].column_names)
    assert len(dataset["train"]) + len(dataset["test"]) == 3000
    train = {normalize_question(q) for q in dataset["train"]["question"]}
    test = {normalize_question(q) for q in dataset["test"]["question"]}
    assert not train & test
    assert sorted(set(dataset["train"]["level"])) == [1, 2, 3]
    row = dataset["train"][0]
    assert row["completion"].endswith(f"|answer {row['answer']}")
    assert all(" = " in step for step in row["steps"])


def test_same_seed_same_rows_and_saved_files(tmp_path):
    a = data.build("arithmetic", [2], 200, style="think", seed=9)
    b = data.build("arithmetic", [2], 200, style="think", seed=9)
    assert a["train"].to_list() == b["train"].to_list()
    data.save(a, tmp_path / "a", jsonl=True)
    data.save(b, tmp_path / "b", jsonl=True)
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "a" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and rows[0]["completion"].startswith("<think>")
    assert data.load(tmp_path / "a")["train"].to_list() == a["train"].to_list()


def test_conversational_rows():
    dataset = data.build("arithmetic", [1], 20, style="think", seed=0, conversational=True)
    row = dataset["train"][0]
    assert row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant"


def test_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(R1kitError, match="not empty"):
        data.save(data.build("arithmetic", [1], 10, style="compact"), out)
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("spec, levels", [("1-3", [1, 2, 3]), ("2", [2]), ("1,4", [1, 4]), ("3-4,1", [1, 3, 4])])
def test_parse_levels(spec, levels):
    assert data.parse_levels(spec) == levels


@pytest.mark.parametrize("spec", ["a-b", "", "1-"])
def test_parse_levels_rejects(spec):
    with pytest.raises(R1kitError):
        data.parse_levels(spec)
