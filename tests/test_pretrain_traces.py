"""`data.traces`: a stated share of a pretrain stage's task rows as worked solutions (the
compiler's exact traces in the recipe's style), the rest answer-only; off by default, and then
every existing recipe builds the same rows under the same base cache key."""

import hashlib
import json
from pathlib import Path

import pytest

from r1kit import data
from r1kit import recipe as recipe_mod
from r1kit.errors import R1kitError
from r1kit.problem import normalize_question
from r1kit.rundir import RunDir
from r1kit.stages.common import stage_data
from r1kit.stages.pretrain import base_cache
from r1kit.verify import check_steps, extract_answer, is_correct

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"


def tiny_recipe(base_data: dict, *, style: str = "compact", extra_stages: tuple = ()) -> dict:
    return {"name": "t", "seed": 3, "style": style, "model": {"preset": "tiny-1m"},
            "stages": [{"name": "base", "kind": "pretrain", "data": base_data}, *extra_stages,
                       {"name": "eval", "kind": "eval", "models": ["base"], "data": {"levels": "1-4", "count": 200}}]}


def test_share_is_exact_and_rows_are_the_compilers_traces():
    n, share = 3000, 0.3
    kwargs = {"task_name": "arithmetic", "levels": [1, 2, 3, 4], "count": n + 1, "seed": 5,
              "test_fraction": 1 / (n + 1)}
    mixed = data.build(**kwargs, style="answer", traces=share, trace_style="compact")["train"].to_list()
    answers = data.build(**kwargs, style="answer")["train"].to_list()
    traces = data.build(**kwargs, style="compact")["train"].to_list()
    assert len(mixed) == len(answers) == len(traces) == n
    chosen = [i for i, row in enumerate(mixed) if row != answers[i]]
    assert abs(len(chosen) - share * n) <= 1
    for i, row in enumerate(mixed):  # each row is the answer-only row or the compact render of the same problem
        assert row == (traces[i] if i in set(chosen) else answers[i])
    for i in chosen[:200]:  # and the compact traces re-compute, step by step, to the gold answer
        row = mixed[i]
        report = check_steps(row["completion"], row["steps"])
        assert report.wrong == 0 and report.matched == report.reference == len(row["steps"]) > 0
        assert is_correct(extract_answer(row["completion"]), row["answer"])
    # deterministic by seed: the same rows again, other rows under another seed
    again = data.build(**kwargs, style="answer", traces=share, trace_style="compact")["train"].to_list()
    assert again == mixed
    assert data.trace_rows(n, share, 5) == set(chosen) != data.trace_rows(n, share, 6)
    assert data.trace_rows(n, 0.0, 5) == set()


def test_stage_mix_traces_only_the_task_rows_and_keeps_them_training_questions(tmp_path):
    raw = tiny_recipe({"levels": "1-4", "count": 2000, "style": "answer", "skills": 0.5, "traces": 0.25})
    recipe = recipe_mod.validate(raw)
    run = RunDir(recipe, tmp_path / "run")
    stage = recipe.stage("base")
    rows = stage_data(run, stage, style="answer").to_list()
    task_rows = [row for row in rows if row["task"] == "arithmetic"]
    skill_rows = [row for row in rows if row["task"] != "arithmetic"]
    assert len(task_rows) == 1000 and skill_rows
    worked = [row for row in task_rows if row["completion"] != f"answer {row['answer']}"]
    assert abs(len(worked) - 250) <= 1
    for row in worked:  # the recipe's style (compact): steps, then the answer
        assert row["completion"].endswith(f"|answer {row['answer']}")
        assert check_steps(row["completion"], row["steps"]).matched == len(row["steps"])
    plain = tiny_recipe({"levels": "1-4", "count": 2000, "style": "answer", "skills": 0.5})
    before = stage_data(RunDir(recipe_mod.validate(plain), tmp_path / "plain"), stage, style="answer").to_list()
    assert [row["question"] for row in before] == [row["question"] for row in rows]  # same problems, same order
    assert [r for r in rows if r["task"] != "arithmetic"] == [r for r in before if r["task"] != "arithmetic"]
    # held out: the trace rows' questions are training questions, which eval never draws
    seen = run.training_questions()
    assert {normalize_question(row["question"]) for row in worked} <= seen
    from r1kit.evaluate import problems_from_task

    held_out = problems_from_task("arithmetic", [1, 2, 3, 4], 200, recipe.seed, exclude=seen)
    assert not {normalize_question(p.question) for p in held_out} & seen


def test_default_recipes_are_unchanged(tmp_path):
    """Pinned at the `granularity` rename (the data dump lost `fine_steps`; the rows did not change):
    the quickstart's base cache keys and the smoke base's rows."""
    full, smoke = recipe_mod.load(QUICKSTART), recipe_mod.load(QUICKSTART, smoke=True)
    assert base_cache(RunDir(full, tmp_path), full.stage("base")).name == "36975746abc01ad7"
    assert base_cache(RunDir(smoke, tmp_path), smoke.stage("base")).name == "f909438d50db3f20"
    for stage in full.stages:
        if hasattr(stage, "data"):
            assert "traces" not in stage.model_dump(mode="json")["data"]
    explicit = recipe_mod.load(QUICKSTART, ["stages.base.data.traces=0.0"])
    assert explicit.model_dump(mode="json") == full.model_dump(mode="json")
    rows = stage_data(RunDir(smoke, tmp_path / "run"), smoke.stage("base"), style="answer").to_list()
    assert rows[0] == {"id": "arithmetic-L2-c84d01e0a15d", "task": "arithmetic", "level": 2, "question": "2 - 13 + 7",
                       "prompt": "2-13+7\n", "completion": "answer -4", "answer": "-4",
                       "steps": ["2 - 13 = -11", "-11 + 7 = -4"], "metadata": "{}"}
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    assert (len(rows), digest) == (576, "01d25502335cd1a3c9596fb3718efe3f7767da20c1005889856186249ff7aa23")


def test_a_trace_share_changes_the_base_cache_key(tmp_path):
    plain = recipe_mod.load(QUICKSTART)
    mixed = recipe_mod.load(QUICKSTART, ["stages.base.data.traces=0.1"])
    other_style = recipe_mod.load(QUICKSTART, ["stages.base.data.traces=0.1", "style=verbal"])
    keys = {base_cache(RunDir(r, tmp_path), r.stage("base")).name for r in (plain, mixed, other_style)}
    assert len(keys) == 3
    assert mixed.stage("base").model_dump(mode="json")["data"]["traces"] == 0.1


@pytest.mark.parametrize("overrides, message", [
    (["stages.base.data.traces=1.0"], "less than 1"),
    (["stages.base.data.traces=-0.1"], "must be at least 0, got -0.1"),
    (["stages.sft.data.traces=0.2"], "only a pretrain stage"),
    (["stages.grpo.data.traces=0.2"], "only a pretrain stage"),
    (["stages.eval.data.traces=0.2"], "only a pretrain stage"),
    (["stages.base.data.traces=0.2", "style=answer"], "it is 'answer'"),
    (["stages.base.data.traces=0.2", "stages.base.data.style=compact"], "already this stage's data.style"),
])
def test_bad_trace_shares_are_rejected(overrides, message):
    with pytest.raises(R1kitError, match=message) as error:
        recipe_mod.load(QUICKSTART, overrides)
    assert "traces" in str(error.value)


def test_build_needs_a_trace_style():
    with pytest.raises(R1kitError, match="trace_style"):
        data.build("arithmetic", [1], 20, style="answer", traces=0.5)
    with pytest.raises(R1kitError, match="below 1"):
        data.trace_rows(10, 1.0, 0)
