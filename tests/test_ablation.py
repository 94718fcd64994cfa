"""The ablation recipe (six arms at equal compute, a teacher, distillation both ways) and the
pieces it is made of: FLOPs budgets, distill/collect stages, per-arm costs."""

import json
from pathlib import Path

import pytest

from r1kit import recipe as recipes
from r1kit.errors import R1kitError

ROOT = Path(__file__).resolve().parents[1]
ARMS = ["a_answer", "b_traces", "c_zero", "d_r1", "e_distill", "f_logit"]


@pytest.fixture(scope="module")
def ablation(tmp_path_factory, cli):
    """`r1kit run recipes/ablation.yaml --smoke`, through the CLI."""
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("ablation") / "run"
    result = cli("run", str(ROOT / "recipes" / "ablation.yaml"), "--smoke", "--out", str(out),
                   env={"R1KIT_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    recipe = recipes.load(ROOT / "recipes" / "ablation.yaml", smoke=True)
    return recipe, out, json.loads((out / "results.json").read_text())


def test_every_arm_is_evaluated_with_intervals(ablation):
    _, _, results = ablation
    models = {row["model"] for row in results["evals"]}
    assert models == {"base", "teacher", "d_sft", *ARMS}  # d_sft: what arm (d)'s GRPO started from
    for row in results["evals"]:
        assert 0 <= row["ci95"][0] <= row["accuracy"] <= row["ci95"][1] <= 1
    assert {row["model"] for row in results["retention"]} == models
    # Each model is paired against the nearest evaluated model it was trained from.
    baselines = {row["model"]: row["baseline"] for row in results["comparisons"]}
    assert baselines["d_r1"] == "d_sft" and baselines["d_sft"] == "base" and baselines["e_distill"] == "base"


def test_arms_spend_their_flops_budget(ablation):
    recipe, _, results = ablation
    costs = results["costs"]
    assert costs["d_r1"]["own_stages"] == ["d_sft", "d_r1"]
    assert costs["e_distill"]["own_stages"] == ["e_distill"]
    assert costs["base"]["own_stages"] == []
    kept = results["collections"]["e_traces"]["total"]["accepted"]
    for arm in ARMS:
        budget = sum(recipe.stage(s).flops_budget for s in costs[arm]["own_stages"])
        spent = costs[arm]["own"]["student_flops"]
        if arm == "e_distill" and not kept:  # the smoke teacher is too weak to be verified: nothing to learn
            assert spent == 0
            continue
        # A budget is spent whole steps at a time: at least one step, and never one step too many.
        assert spent > 0
        assert spent <= budget * 1.6 + 2.5e10, (arm, spent, budget)
    # GRPO stops on the budget, not on a step count.
    assert costs["c_zero"]["own"]["student_flops"] >= recipe.stage("c_zero").flops_budget


def test_distilled_arms_are_charged_for_their_teacher(ablation):
    _, _, results = ablation
    costs, total = results["costs"], results["ledger"]["total_all"]
    for arm in ("e_distill", "f_logit"):
        lineage = costs[arm]["lineage_stages"]
        assert {"base", "teacher_base", "teacher_sft", "teacher"} <= set(lineage)
        assert costs[arm]["lineage"]["flops"] > costs["teacher"]["lineage"]["flops"]
    assert "e_traces" in costs["e_distill"]["lineage_stages"]
    assert "teacher_base" not in costs["b_traces"]["lineage_stages"]
    f_logit = next(r for r in results["ledger"]["stages"] if r["stage"] == "f_logit")
    assert f_logit["flops"] > f_logit["student_flops"] > 0  # the teacher's forward passes are counted
    assert total["flops"] >= max(c["lineage"]["flops"] for c in costs.values())


def test_collection_keeps_only_verified_traces_and_the_report_shows_costs(ablation):
    _, out, _ = ablation
    traces = out / "stages" / "e_traces" / "traces"
    summary = json.loads((traces / "summary.json").read_text())
    assert summary["chunks_done"] == summary["chunks"]
    from r1kit import tasks
    from r1kit.problem import Problem

    kept = [json.loads(line) for line in (traces / "traces.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (traces / "rejected.jsonl").read_text().splitlines()]
    assert len(kept) == summary["total"]["accepted"]
    assert len(kept) + len(rejected) > 0  # the teacher was asked, and every sample has a verdict on record
    for row in kept:
        problem = Problem(id=row["id"], task=row["task"], level=row["level"], question=row["question"],
                          answer=row["answer"])
        assert tasks.get("arithmetic").score(row["completion"], problem) == 1.0
    assert all(row["reason"] in summary["total"]["rejected"] for row in rejected)
    report = (out / "report.md").read_text()
    assert "What each model cost" in report and "everything run" in report
    for arm in ARMS:
        assert f"| {arm} |" in report


def test_distill_and_budget_recipe_errors():
    base = {"name": "x", "model": {"preset": "tiny-1m"}, "stages": [
        {"name": "base", "kind": "pretrain"},
        {"name": "sft", "kind": "sft", "from": "base"}]}
    cases = [
        ({"name": "d", "kind": "distill", "from": "base"}, "needs traces"),
        ({"name": "d", "kind": "distill", "from": "base", "mode": "logit"}, "needs teacher"),
        ({"name": "d", "kind": "distill", "from": "base", "traces": "sft"}, "must name a collect stage"),
        ({"name": "d", "kind": "distill", "from": "base", "traces": "nope"}, "which no earlier stage makes"),
        ({"name": "d", "kind": "sft", "from": "base", "flops_budget": 1e9, "train": {"max_steps": 3}}, "not both"),
        ({"name": "d", "kind": "collect", "teacher": "sftt"}, "did you mean 'sft'"),
        ({"name": "d", "kind": "distill", "from": "base", "mode": "logit", "teacher": "sft",
          "train": {"lmbda": 0.5}}, "not a DistillationConfig field"),
    ]
    for stage, message in cases:
        raw = {**base, "stages": [*base["stages"], stage]}
        with pytest.raises(R1kitError, match=message):
            recipes.validate(raw)


def test_budget_arithmetic():
    from r1kit.train.budget import FlopsBudget, sft_steps, step_ceiling

    # 1M parameters, 40 tokens a row, 64 rows a step: 6 * 1e6 * 40 * 64 = 1.536e10 FLOPs a step.
    assert sft_steps(1.536e12, 1_000_000, [40] * 6400, 64) == 100
    assert sft_steps(1.0, 1_000_000, [40] * 6400, 64) == 1
    # 100 rows in batches of 64: an epoch is one full and one short step, 2000 tokens in 2 steps.
    assert sft_steps(6e6 * 1000 * 10, 1_000_000, [20] * 100, 64) == 10
    assert step_ceiling(1.536e12, 1_000_000, 40, 64) >= 75  # 8·N per token: at most 75 steps + 1

    class State:
        num_input_tokens_seen = 0

    class Control:
        should_training_stop = False
        should_save = False

    budget, state, control = FlopsBudget(8e9, 1_000_000), State(), Control()
    state.num_input_tokens_seen = 999
    assert not budget.on_step_end(None, state, control).should_training_stop
    state.num_input_tokens_seen = 1000
    assert budget.on_step_end(None, state, control).should_training_stop


def test_row_lengths_count_the_tokens_of_conversational_rows():
    """A chat template tokenizes into a BatchEncoding (transformers 5): its rows are as long as
    their tokens, not as its two keys; a plain row is its tokens plus EOS."""
    from r1kit import data
    from r1kit.models import build_char_tokenizer
    from r1kit.train.budget import row_lengths

    tokenizer = build_char_tokenizer()
    chat = data.build("arithmetic", [1], 8, style="think", conversational=True)["train"]
    plain = data.build("arithmetic", [1], 8, style="compact")["train"]
    for row, length in zip(chat, row_lengths(chat, tokenizer)):
        ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)["input_ids"]
        assert length == len(ids) > len(row["completion"][0]["content"])
    for row, length in zip(plain, row_lengths(plain, tokenizer)):
        assert length == len(row["prompt"] + row["completion"]) + 1  # one token a character, and EOS
