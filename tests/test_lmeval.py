"""lm-eval integration: scores on r1kit's local task, a before/after recipe stage, clear errors."""

import json

import pytest

pytest.importorskip("lm_eval")

from r1kit import recipe as recipe_mod
from r1kit.errors import R1kitError
from r1kit.lmeval import compare_items, evaluate, item_results, run_lm_eval, summarize
from r1kit.report import delta_tables, lm_eval_comparison_table


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from r1kit.models import build_char_tokenizer, build_tiny_model, save_model

    tokenizer = build_char_tokenizer()
    path = tmp_path_factory.mktemp("lmeval") / "tiny"
    save_model(build_tiny_model("tiny-1m", tokenizer), tokenizer, path, prompt_info={"style": "compact", "chat": False})
    return path


def test_local_task_scores_a_tiny_model(tiny_model):
    added = {}
    meter = type("Meter", (), {"add": lambda self, **kw: added.update(kw)})()
    result = run_lm_eval(str(tiny_model), ["r1kit_basics"], limit=6, batch_size=4, meter=meter)
    task = result["r1kit_basics"]
    assert set(task["metrics"]) == {"acc", "acc_norm"}
    assert all(0.0 <= v <= 1.0 for v in task["metrics"].values())
    assert set(task["stderr"]) == {"acc", "acc_norm"}
    assert task["n"] == 6 and task["num_fewshot"] == 0
    assert added["generated_tokens"] > 0 and added["parameters"] > 0


@pytest.fixture(scope="module")
def basics_out(tiny_model):
    return evaluate(str(tiny_model), ["r1kit_basics"], limit=8, batch_size=8, log_samples=True)


def test_items_keep_each_docs_metrics_and_nothing_else(basics_out):
    items = item_results(basics_out)["r1kit_basics"]
    assert list(items) == ["doc_id", "acc", "acc_norm"] and items["doc_id"] == list(range(8))
    assert all(v in (0, 1) and type(v) is int for m in ("acc", "acc_norm") for v in items[m])
    metrics = summarize(basics_out)["r1kit_basics"]["metrics"]
    assert sum(items["acc"]) / 8 == pytest.approx(metrics["acc"])
    assert sum(items["acc_norm"]) / 8 == pytest.approx(metrics["acc_norm"])


def test_a_model_against_itself_is_no_change(basics_out):
    items = item_results(basics_out)
    [row] = compare_items({"base": items, "again": items}, {})
    assert {k: row[k] for k in ("model", "baseline", "task", "group", "metric", "n")} == {
        "model": "again", "baseline": "base", "task": "r1kit_basics", "group": None, "metric": "acc_norm", "n": 8}
    assert row["diff"] == row["low"] == row["high"] == 0.0 and row["b"] == row["c"] == 0
    assert row["p_mcnemar"] == 1.0 and row["verdict"] == "no measurable change"


def test_a_model_right_everywhere_gains_by_the_baselines_misses(basics_out):
    items = item_results(basics_out)
    task = items["r1kit_basics"]
    perfect = {"r1kit_basics": {**task, "acc_norm": [1] * len(task["doc_id"])}}
    [row] = compare_items({"base": items, "perfect": perfect}, {})
    misses = task["acc_norm"].count(0)
    assert (row["b"], row["c"], row["accuracy"]) == (misses, 0, 1.0)
    assert row["diff"] == pytest.approx(misses / 8) and row["low"] <= row["diff"] <= row["high"]
    header, rows = lm_eval_comparison_table([row])
    assert header[:3] == ["comparison", "task (items)", "metric"]
    assert rows[0][:3] == ["perfect vs base", "r1kit_basics (n=8)", "acc_norm"]


def test_different_items_fail_clearly(basics_out):
    items = item_results(basics_out)
    fewer = {"r1kit_basics": {k: v[:-1] for k, v in items["r1kit_basics"].items()}}
    with pytest.raises(R1kitError, match=r"different items of r1kit_basics for 'sft' \(7\) and the baseline "
                                         r"'base' \(8; 0 only in 'sft', 1 only in 'base'\)"):
        compare_items({"base": items, "sft": fewer}, {})
    with pytest.raises(R1kitError, match="different items of r1kit_basics"):
        compare_items({"base": items, "sft": {}}, {})


def test_custom_jsonl_task_from_include_path(tiny_model, tmp_path):
    """A user's own generate_until task: data_files relative to the YAML, not to the cwd."""
    (tmp_path / "echo.jsonl").write_text("".join(json.dumps({"q": f"{i}+0", "a": str(i)}) + "\n" for i in range(5)))
    (tmp_path / "echo.yaml").write_text(
        "task: my_echo\ncustom_dataset: !function r1kit.lmeval.jsonl_dataset\n"
        "dataset_kwargs: {data_files: echo.jsonl}\noutput_type: generate_until\ntest_split: train\n"
        "doc_to_text: '{{q}}='\ndoc_to_target: '{{a}}'\n"
        "generation_kwargs: {until: ['\\n'], max_gen_toks: 4, do_sample: false}\n"
        "metric_list: [{metric: exact_match, aggregation: mean, higher_is_better: true}]\n")
    result = run_lm_eval(str(tiny_model), ["my_echo"], include_path=str(tmp_path), limit=3, batch_size=2)
    assert 0.0 <= result["my_echo"]["metrics"]["exact_match"] <= 1.0 and result["my_echo"]["n"] == 3


def test_unknown_task_is_one_clear_error(tiny_model):
    with pytest.raises(R1kitError, match=r"unknown lm-eval task 'arc_eazy' \(did you mean 'arc_easy'"):
        run_lm_eval(str(tiny_model), ["arc_eazy"])


def test_task_needing_a_download_offline(tiny_model, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(R1kitError, match="needs its dataset downloaded"):
        run_lm_eval(str(tiny_model), ["arc_easy"], limit=2)


def test_delta_tables_put_the_baseline_first():
    def score(acc):
        return {"t": {"metrics": {"acc": acc}, "stderr": {"acc": 0.05}, "higher_is_better": {"acc": True},
                      "n": 10, "num_fewshot": 0}}

    [(title, header, rows)] = delta_tables({"base": score(0.5), "sft": score(0.4)})
    assert title == "t (n=10, 0-shot)" and header == ["metric", "base (baseline)", "sft (vs baseline)"]
    assert rows == [["acc", "0.500 ± 0.050", "0.400 ± 0.050 (-0.100)"]]


def test_stage_validation():
    base = {"name": "x", "model": {"preset": "tiny-1m"}, "stages": [{"name": "base", "kind": "pretrain"}]}
    with pytest.raises(R1kitError, match="include_path /nope is not a directory"):
        recipe_mod.validate({**base, "stages": [*base["stages"], {"name": "le", "kind": "lm_eval", "models": ["base"],
                                                                  "include_path": "/nope"}]})
    with pytest.raises(R1kitError, match="reads 'sft', which no earlier stage makes"):
        recipe_mod.validate({**base, "stages": [*base["stages"], {"name": "le", "kind": "lm_eval", "models": ["sft"]}]})


def test_recipe_reports_before_and_after(tmp_path, monkeypatch):
    from r1kit.pipeline import Run

    recipe = recipe_mod.validate({
        "name": "lmeval-retention", "model": {"preset": "tiny-1m"},
        "stages": [
            {"name": "base", "kind": "pretrain", "data": {"levels": "1-2", "count": 40},
             "train": {"max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1}},
            {"name": "sft", "kind": "sft", "from": "base", "data": {"levels": "1-2", "count": 20},
             "train": {"max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1}},
            {"name": "general", "kind": "lm_eval", "models": ["base", "sft"], "tasks": ["r1kit_basics"],
             "limit": 5, "batch_size": 5},
            {"name": "report", "kind": "report"},
        ]})
    monkeypatch.setenv("R1KIT_CACHE", str(tmp_path / "cache"))  # not the user's cached bases
    results = Run(recipe, tmp_path / "run").execute()
    scores = results["lm_eval"]["general"]["models"]
    assert list(scores) == ["base", "sft"]
    assert all(0.0 <= scores[m]["r1kit_basics"]["metrics"]["acc"] <= 1.0 for m in scores)
    delta = scores["sft"]["r1kit_basics"]["metrics"]["acc"] - scores["base"]["r1kit_basics"]["metrics"]["acc"]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["lm_eval"]["general"]["models"] == scores
    stage_file = json.loads((tmp_path / "run" / "stages" / "general" / "lm_eval.json").read_text())
    assert {m: stage_file["items"][m]["r1kit_basics"]["doc_id"] for m in ("base", "sft")} == {
        "base": [0, 1, 2, 3, 4], "sft": [0, 1, 2, 3, 4]}
    [row] = stage_file["comparisons"]
    assert (row["model"], row["baseline"], row["task"], row["metric"], row["n"]) == ("sft", "base", "r1kit_basics",
                                                                                     "acc_norm", 5)
    assert row["low"] <= row["diff"] <= row["high"] and row["verdict"] in ("gain", "loss", "no measurable change")
    assert saved["lm_eval"]["general"]["comparisons"] == [row] and "items" not in saved["lm_eval"]["general"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "General ability (lm-eval): r1kit_basics (n=5, 0-shot)" in report
    assert "| metric | base (baseline) | sft (vs baseline) |" in report
    assert f"({delta:+.3f})" in report
    assert "## What each stage cost in general ability (lm-eval, paired)" in report
    assert f"| sft vs base | r1kit_basics (n=5) | acc_norm | {100 * row['baseline_accuracy']:.1f}% → " in report
    assert "r1kit_basics" in (tmp_path / "run" / "report.html").read_text()
    [stage] = [s for s in results["ledger"]["stages"] if s["stage"] == "general"]
    assert stage["generated_tokens"] > 0 and stage["flops"] > 0
