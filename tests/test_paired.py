"""Paired comparisons (what each stage bought): the statistics against known values, which model
each one is compared with, and the comparisons through eval.json, results.json and the report."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest

from r1kit import recipe as recipes
from r1kit.errors import R1kitError
from r1kit.paired import bootstrap_interval, compare, mcnemar_p, paired, verdict
from r1kit.problem import Problem
from r1kit.prompting import PromptFormat
from r1kit.report import write_report
from r1kit.stages.evaluation import EVAL_FILE, baseline, read_eval, run_eval

from test_evaluate import Chars, Scripted


def test_mcnemar_exact_known_values():
    # Two-sided binomial(12, 1/2) with 2 or fewer of one kind: 2 * (1 + 12 + 66) / 4096.
    assert mcnemar_p(10, 2) == pytest.approx(0.0386, abs=1e-4)
    assert mcnemar_p(2, 10) == mcnemar_p(10, 2) == pytest.approx(2 * 79 / 4096)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(3, 0) == pytest.approx(0.25)
    assert 0 < mcnemar_p(1500, 1300) < 0.001  # thousands of pairs: exact integers, no underflow


def test_bootstrap_matches_resampling_problems_and_is_deterministic():
    b, c, n = 30, 10, 800
    low, high = bootstrap_interval(b, c, n)
    assert bootstrap_interval(b, c, n) == (low, high)
    diffs = np.array([1] * b + [-1] * c + [0] * (n - b - c))
    index = np.random.default_rng(123).integers(0, n, size=(10_000, n))
    reference = np.percentile(diffs[index].mean(axis=1), [2.5, 97.5])
    assert (low, high) == pytest.approx(tuple(reference), abs=0.003)
    assert low < (b - c) / n < high
    assert bootstrap_interval(0, 0, 50) == (0.0, 0.0)


def test_verdict():
    assert verdict(0.01, 0.08, 0.01) == "gain"
    assert verdict(-0.08, -0.01, 0.01) == "loss"
    assert verdict(-0.02, 0.05, 0.01) == "no measurable change"
    assert verdict(0.0, 0.05, 0.01) == "no measurable change"  # touching 0 is not above it
    assert verdict(0.02, 0.18, mcnemar_p(5, 0)) == "no measurable change"  # 5 vs 0 discordant: p = 0.0625
    assert verdict(0.02, 0.18, mcnemar_p(10, 2)) == "gain"


def test_paired_matches_by_id_and_refuses_other_problems():
    new = {"a": True, "b": True, "c": False, "d": True}
    old = {"d": False, "c": False, "b": True, "a": False}  # another order: matched by id
    out = paired(new, old)
    assert (out["n"], out["b"], out["c"], out["accuracy"], out["baseline_accuracy"]) == (4, 2, 0, 0.75, 0.25)
    assert out["diff"] == pytest.approx(0.5)
    same = paired(new, dict(new))
    assert (same["diff"], same["low"], same["high"], same["p_mcnemar"], same["verdict"]) == (
        0.0, 0.0, 0.0, 1.0, "no measurable change")
    with pytest.raises(R1kitError, match="same problems: 1 problem.* only in the new .* 0 only in the baseline"):
        paired({**new, "e": True}, old)
    with pytest.raises(R1kitError, match="at least one problem"):
        paired({}, {})


def _rows(right: set[int], n: int = 40) -> list[dict]:
    return [{"id": f"p{i}", "level": 1 + i // 20, "correct": i in right, "flexible_correct": i in right}
            for i in range(n)]


BASE, SFT = set(range(12)), set(range(2, 22))  # pooled: b = 10 (12..21), c = 2 (0, 1)


def test_compare_per_level_and_pooled():
    rows = compare("sft", "base", _rows(SFT), _rows(BASE))
    assert [(r["level"], r["n"], r["b"], r["c"]) for r in rows] == [(1, 20, 8, 2), (2, 20, 2, 0), ("all", 40, 10, 2)]
    pooled = rows[-1]
    assert pooled["p_mcnemar"] == pytest.approx(0.0386, abs=1e-4) and pooled["diff"] == pytest.approx(0.2)
    assert (pooled["model"], pooled["baseline"], pooled["metric"], pooled["verdict"]) == ("sft", "base", "strict", "gain")
    assert compare("a", "b", [], []) == []
    with pytest.raises(R1kitError, match="same problems"):
        compare("sft", "base", _rows(SFT), _rows(BASE, n=39))


def _recipe(name: str, overrides=()):
    return recipes.load(files("r1kit") / "recipes" / f"{name}.yaml", list(overrides))


def test_baselines_follow_from_links_to_the_nearest_evaluated_model():
    quick = _recipe("quickstart")
    evaluated = quick.stage("eval").models
    assert {m: baseline(quick, m, evaluated) for m in evaluated} == {"base": None, "sft": "base", "grpo": "sft"}
    ablation = _recipe("ablation")
    evaluated = ablation.stage("eval").models
    assert {m: baseline(ablation, m, evaluated) for m in evaluated} == {
        "base": None, "a_answer": "base", "b_traces": "base", "c_zero": "base",
        "d_sft": "base", "d_r1": "d_sft",  # d_r1 against what its GRPO started from
        "e_distill": "base", "f_logit": "base",  # distill stages follow `from:`, not the teacher
        "teacher": None}  # teacher_sft and teacher_base are not evaluated
    assert ablation.started_from("d_r1") == ["d_sft", "base"]
    assert baseline(ablation, "d_r1", ["base", "d_r1"]) == "base"  # skips an ancestor that is not evaluated
    assert baseline(quick, "grpo", ["base", "grpo"]) == "base"


class Meter:
    def add(self, **counts):
        pass


def test_comparisons_in_eval_json_results_and_report(tmp_path, monkeypatch):
    """The eval stage on scripted models (base, sft, grpo = sft), then results.json and the report."""
    from r1kit import engines, evaluate, prompting
    from r1kit.pipeline import Run

    problems = [Problem(id=f"p{i}", task="arithmetic", level=1 + i // 20, question=f"{i}+1", answer=str(i + 1))
                for i in range(40)]
    right = {"base": BASE, "sft": SFT, "grpo": SFT}
    monkeypatch.setattr(evaluate, "problems_from_task", lambda *args, **kwargs: problems)
    monkeypatch.setattr(prompting, "prompt_format", lambda *args, **kwargs: PromptFormat("compact", False))
    monkeypatch.setattr(engines, "parameter_count", lambda model: 1)
    monkeypatch.setattr(engines, "load_for_inference", lambda path, *args, **kwargs: (Scripted(
        {p.question: f"answer {p.answer if i in right[path.split('/')[-2]] else 0}" for i, p in enumerate(problems)}),
        Chars()))
    recipe = _recipe("quickstart", ["stages.eval.retention=false", "stages.eval.engine=hf", "stages.eval.k=1"])
    run = Run(recipe, tmp_path)
    stage = recipe.stage("eval")
    run_eval(run, stage, Meter())

    comparisons = json.loads((run.stage_dir("eval") / EVAL_FILE).read_text())["comparisons"]
    assert [(r["model"], r["baseline"], r["metric"], r["level"]) for r in comparisons] == [
        (m, base, metric, level) for m, base in (("sft", "base"), ("grpo", "sft")) for metric in ("strict", "flexible")
        for level in (1, 2, "all")]
    pooled = next(r for r in comparisons if (r["model"], r["level"], r["metric"]) == ("sft", "all", "strict"))
    assert (pooled["n"], pooled["b"], pooled["c"], pooled["accuracy"], pooled["baseline_accuracy"]) == (40, 10, 2, 0.5, 0.3)
    assert pooled["p_mcnemar"] == pytest.approx(0.0386, abs=1e-4) and pooled["verdict"] == "gain"
    assert {r["verdict"] for r in comparisons if r["model"] == "grpo"} == {"no measurable change"}
    assert set(pooled) == {"model", "baseline", "level", "n", "accuracy", "baseline_accuracy", "diff", "low", "high",
                           "p_mcnemar", "b", "c", "verdict", "metric"}

    assert read_eval(run, stage)["comparisons"] == comparisons
    run.write_results()
    assert json.loads(run.results_path.read_text())["comparisons"] == comparisons
    md = write_report(tmp_path)[0].read_text(encoding="utf-8")
    section = md.split("## What each stage bought\n")[1]
    assert "paired" in section.split("\n\n")[0]  # the one-line explanation under the heading
    low, high = 100 * pooled["low"], 100 * pooled["high"]
    assert f"| sft vs base | all | 30.0% → 50.0% | +20.0 pts [{low:+.1f}, {high:+.1f}] | p=0.039 | 10 / 2 | gain |" in md
    assert "| grpo vs sft | level 2 | 10.0% → 10.0% | +0.0 pts [+0.0, +0.0] | p=1 | 0 / 0 | no measurable change |" in md
    assert "## What each stage bought, flexible extraction" in md


def test_compare_command_on_two_eval_files(tmp_path, capsys, monkeypatch):
    from r1kit import cli
    from r1kit.cli import main

    monkeypatch.setattr(cli.console, "width", 200)  # one table row a line

    new, old, other = tmp_path / "sft.json", tmp_path / "base.json", tmp_path / "other.json"
    new.write_text(json.dumps({"problems": _rows(SFT)}))
    old.write_text(json.dumps({"problems": _rows(BASE)}))
    other.write_text(json.dumps({"problems": _rows(BASE, n=39)}))
    assert main(["compare", str(new), str(old)]) == 0
    out = capsys.readouterr().out
    assert "sft vs base" in out and "p=0.039" in out and "10 / 2" in out and "gain" in out
    assert main(["compare", str(new), str(other)]) == 1
    assert "needs the same problems" in capsys.readouterr().err
    assert main(["compare", str(new), str(tmp_path / "missing.json")]) == 1
    assert f"no file at {tmp_path / 'missing.json'}" in capsys.readouterr().err
    sampled_new, sampled_old = tmp_path / "grpo.json", tmp_path / "sft_k4.json"
    sampled_new.write_text(json.dumps({"temperature": 0.7, "problems": _sampled_rows({i: 3 for i in range(30)})}))
    sampled_old.write_text(json.dumps({"temperature": 0.7, "problems": _sampled_rows({i: 1 for i in range(30)})}))
    assert main(["compare", str(sampled_new), str(sampled_old)]) == 0
    out = capsys.readouterr().out
    assert "sampled@1 at T=0.7" in out and "18.8% → 56.2%" in out and "30 / 0" in out
    (tmp_path / "x.json").write_text("[]")
    assert main(["compare", str(new), str(tmp_path / "x.json")]) == 1
    assert "is not an r1kit eval --json file" in capsys.readouterr().err


def test_paired_scores_on_a_known_difference():
    from r1kit.paired import paired_scores

    rng = np.random.default_rng(1)
    old = {i: float(s) for i, s in enumerate(rng.uniform(0, 0.7, 200))}
    new = {i: min(1.0, old[i] + 0.1 + float(rng.normal(0, 0.05))) for i in old}
    out = paired_scores(new, old)
    diffs = np.array([new[i] - old[i] for i in old])
    assert out["diff"] == pytest.approx(diffs.mean()) and out["diff"] == pytest.approx(0.1, abs=0.01)
    assert out["low"] < out["diff"] < out["high"] and out["high"] - out["low"] < 0.03
    reference = np.percentile(diffs[np.random.default_rng(5).integers(0, 200, (10_000, 200))].mean(axis=1), [2.5, 97.5])
    assert (out["low"], out["high"]) == pytest.approx(tuple(reference), abs=0.002)
    assert out["p_sign_flip"] < 0.001 and out["verdict"] == "gain" and out["higher"] + out["lower"] == 200
    assert paired_scores(new, old) == out  # fixed seed
    assert paired_scores(old, new)["verdict"] == "loss"
    same = paired_scores(old, dict(old))
    assert (same["diff"], same["low"], same["high"], same["p_sign_flip"], same["verdict"]) == (
        0.0, 0.0, 0.0, 1.0, "no measurable change")
    with pytest.raises(R1kitError, match="same problems"):
        paired_scores(new, {**old, "extra": 0.0})


def test_sign_flip_on_verdicts_is_mcnemar():
    from r1kit.paired import paired_scores, sign_flip_p

    for b, c in ((3, 0), (10, 2), (5, 5), (0, 4)):  # few discordant pairs: every sign pattern, exact
        diffs = np.array([1.0] * b + [-1.0] * c + [0.0] * 30)
        assert sign_flip_p(diffs) == pytest.approx(mcnemar_p(b, c))
    new, old = {i: float(i < 30) for i in range(100)}, {i: float(i < 18) for i in range(100)}
    assert sign_flip_p(np.array([new[i] - old[i] for i in new])) == pytest.approx(mcnemar_p(12, 0), abs=1e-3)
    binary = paired(*({i: bool(v) for i, v in d.items()} for d in (new, old)))
    scored = paired_scores(new, old)
    assert (scored["diff"], scored["higher"], scored["lower"]) == (binary["diff"], binary["b"], binary["c"])


def _sampled_rows(right: dict[int, int], k: int = 4, n: int = 40, sampled: int = 40) -> list[dict]:
    """Problem i has right[i] of its k samples right (0 when absent); only the first `sampled` were sampled."""
    rows = _rows(set(), n)
    for i, row in enumerate(rows[:sampled]):
        c = right.get(i, 0)
        row.update({"samples": k, "sampled_correct": c, f"pass@{k}": float(c > 0), f"maj@{k}": float(2 * c > k)})
    return rows


def test_compare_on_sampled_metrics():
    from r1kit.paired import metrics_of

    new, old = _sampled_rows({i: 3 for i in range(30)}), _sampled_rows({i: 1 for i in range(30)})
    assert metrics_of(new, old) == ["strict", "flexible", "sampled@1", "pass@4", "maj@4"]
    assert metrics_of(new, _rows(set())) == ["strict", "flexible"]  # the baseline drew no samples
    rows = compare("grpo", "sft", new, old, "sampled@1")
    assert [(r["level"], r["n"], r["metric"]) for r in rows] == [(1, 20, "sampled@1"), (2, 20, "sampled@1"),
                                                                  ("all", 40, "sampled@1")]
    pooled = rows[-1]
    assert (pooled["accuracy"], pooled["baseline_accuracy"], pooled["diff"]) == pytest.approx((0.5625, 0.1875, 0.375))
    assert pooled["verdict"] == "gain" and (pooled["higher"], pooled["lower"]) == (30, 0)
    assert compare("grpo", "sft", new, old, "pass@4")[-1]["diff"] == 0.0  # both have a right sample on the same 30
    assert compare("grpo", "sft", new, old, "maj@4")[-1]["diff"] == pytest.approx(0.75)
    subset = compare("grpo", "sft", _sampled_rows({0: 4}, sampled=10), _sampled_rows({}, sampled=10), "sampled@1")
    assert [r["n"] for r in subset] == [10, 10]  # only the sampled problems (all of level 1) are compared
    assert subset[-1]["level"] == "all" and subset[0]["level"] == 1


def _scripted_eval(tmp_path, monkeypatch, overrides, sampled_right=None):
    """The quickstart's eval stage on scripted models (base, sft, grpo = sft, as above); with
    `sampled_right`, model -> {problem index: right samples of 2}. Returns the run and eval.json."""
    from r1kit import engines, evaluate, prompting
    from r1kit.pipeline import Run

    from test_evaluate import Sampling

    problems = [Problem(id=f"p{i}", task="arithmetic", level=1 + i // 20, question=f"{i}+1", answer=str(i + 1))
                for i in range(40)]
    right = {"base": BASE, "sft": SFT, "grpo": SFT}
    engines_made = {}

    def load(path, *args, **kwargs):
        name = path.split("/")[-2]
        answers = {p.question: f"answer {p.answer if i in right[name] else 0}" for i, p in enumerate(problems)}
        samples = {p.question: [f"answer {p.answer}"] * (sampled_right or {}).get(name, {}).get(i, 0) for i, p in
                   enumerate(problems)}
        engines_made[name] = Sampling(answers, {q: s + ["answer 0"] * (2 - len(s)) for q, s in samples.items()})
        return engines_made[name], Chars()

    monkeypatch.setattr(evaluate, "problems_from_task", lambda *args, **kwargs: problems)
    monkeypatch.setattr(prompting, "prompt_format", lambda *args, **kwargs: PromptFormat("compact", False))
    monkeypatch.setattr(engines, "parameter_count", lambda model: 1)
    monkeypatch.setattr(engines, "load_for_inference", load)
    recipe = _recipe("quickstart", ["stages.eval.retention=false", "stages.eval.engine=hf", *overrides])
    run = Run(recipe, tmp_path)
    run_eval(run, recipe.stage("eval"), Meter())
    return run, json.loads((run.stage_dir("eval") / EVAL_FILE).read_text()), engines_made


def test_an_eval_stage_with_k_2_writes_sampled_fields_comparisons_and_tables(tmp_path, monkeypatch, capsys):
    sampled_right = {"base": {i: 1 for i in BASE}, "sft": {i: 2 for i in SFT}, "grpo": {i: 2 for i in SFT}}
    run, data, made = _scripted_eval(tmp_path / "k2", monkeypatch, ["stages.eval.k=2", "stages.eval.temperature=0.5"],
                                     sampled_right)
    assert {name: engine.temperatures for name, engine in made.items()} == {m: [0.5] for m in ("base", "sft", "grpo")}
    sft_all = next(r for r in data["rows"] if (r["model"], r["level"]) == ("sft", "all"))
    assert (sft_all["temperature"], sft_all["sampled_n"], sft_all["sampled@1"], sft_all["pass@2"], sft_all["maj@2"]) == (
        0.5, 40, 0.5, 0.5, 0.5)
    row = data["problems"]["base"][0]
    assert (row["samples"], row["sampled_correct"], row["pass@2"], row["maj@2"]) == (2, 1, 1.0, 1.0)  # a 1-1 tie: the first answer
    assert data["models"]["sft"]["sampled@1"] == 0.5

    comparisons = data["comparisons"]
    assert [r["metric"] for r in comparisons if (r["model"], r["level"]) == ("sft", "all")] == [
        "strict", "flexible", "sampled@1", "pass@2", "maj@2"]
    pooled = next(r for r in comparisons if (r["model"], r["level"], r["metric"]) == ("sft", "all", "sampled@1"))
    assert (pooled["accuracy"], pooled["baseline_accuracy"]) == pytest.approx((0.5, 0.15))
    assert pooled["diff"] == pytest.approx(0.35) and pooled["verdict"] == "gain" and pooled["temperature"] == 0.5
    assert (pooled["higher"], pooled["lower"]) == (20, 2)  # sft has none of base's samples right on problems 0 and 1
    assert {r["verdict"] for r in comparisons if r["model"] == "grpo"} == {"no measurable change"}

    # sampling leaves the greedy comparisons exactly as a k = 1 eval writes them
    _, greedy_only, _ = _scripted_eval(tmp_path / "k1", monkeypatch, ["stages.eval.k=1"])
    assert [r for r in comparisons if r["metric"] in ("strict", "flexible")] == greedy_only["comparisons"]
    assert not any("sampled@1" in r or "temperature" in r for r in greedy_only["rows"])
    assert not any("samples" in r for rows in greedy_only["problems"].values() for r in rows)

    out = "".join(capsys.readouterr())
    assert "sampled at T=0.5: sampled@1 [95% CI] / pass@2 / maj@2" in out and "sampled@1 at T=0.5, paired" in out
    run.write_results()
    md = write_report(tmp_path / "k2")[0].read_text(encoding="utf-8")
    assert "## Sampled accuracy by level at T=0.5 (sampled@1, pass@2, maj@2, strict, 95% intervals)" in md
    low, high = 100 * pooled["low"], 100 * pooled["high"]
    assert "## What each stage bought, sampled@1 at T=0.5" in md and "## What each stage bought, maj@2 at T=0.5" in md
    assert f"| sft vs base | all | 15.0% → 50.0% | +35.0 pts [{low:+.1f}, {high:+.1f}] | p<0.001 | 20 / 2 | gain |" in md
    assert "| sft | sampled@1 | 90.0% [69.9%, 97.2%] (n=20) |" in md  # every sample agrees: Wilson over 20 problems


def test_an_eval_stage_with_k_2_on_real_tiny_models(tmp_path):
    """Two saved tiny models answer generated problems, greedy and sampled, into eval.json with their
    comparison rows: the first 3 problems of each level sampled, at the stated temperature."""
    from r1kit.models import build_char_tokenizer, build_tiny_model, save_model
    from r1kit.pipeline import Run

    recipe = _recipe("quickstart", ["stages.eval.retention=false", "stages.eval.engine=hf", "stages.eval.models=[base, sft]",
                                    "stages.eval.data.levels=1-2", "stages.eval.data.count=8", "stages.eval.k=2",
                                    "stages.eval.temperature=1e-6", "stages.eval.sample_count=3",
                                    "stages.eval.max_new_tokens=12"])
    run = Run(recipe, tmp_path)
    tokenizer = build_char_tokenizer()
    for seed, name in enumerate(("base", "sft")):
        save_model(build_tiny_model("tiny-1m", tokenizer, seed=seed), tokenizer, run.model_path(name),
                   prompt_info={"style": "compact", "chat": False})
    run_eval(run, recipe.stage("eval"), Meter())
    data = json.loads((run.stage_dir("eval") / EVAL_FILE).read_text())
    assert [(r["model"], r["level"], r["n"], r["sampled_n"], r["temperature"]) for r in data["rows"]] == [
        (m, level, n, sampled, 1e-6) for m in ("base", "sft") for level, n, sampled in ((1, 4, 3), (2, 4, 3), ("all", 8, 6))]
    for rows in data["problems"].values():
        assert [("samples" in r) for r in rows if r["level"] == 1] == [True, True, True, False]
    assert [(r["metric"], r["level"], r["n"]) for r in data["comparisons"] if r["metric"] in ("sampled@1", "pass@2")] == [
        (metric, level, n) for metric in ("sampled@1", "pass@2") for level, n in ((1, 3), (2, 3), ("all", 6))]


def test_unpaired_means_and_the_rl_change_table():
    from r1kit.paired import unpaired_means
    from r1kit.report import rl_change_table

    change = unpaired_means([0.1, 0.2, 0.1, 0.2], [0.5, 0.6, 0.5, 0.6])
    assert change["diff"] == pytest.approx(0.4) and 0.3 <= change["low"] <= change["high"] <= 0.5
    flat = unpaired_means([0.1, 0.3] * 4, [0.3, 0.1] * 4)
    assert flat["low"] < 0 < flat["high"]
    with pytest.raises(R1kitError):
        unpaired_means([0.1], [0.2, 0.3])
    records = [{"step": s, "reward": 0.1 * s, "rewards/accuracy_reward/mean": 0.1 * s, "completions/mean_length": 30 - s}
               for s in range(1, 9)] + [{"step": 8, "loss": 0.1}]
    header, rows = rl_change_table({"grpo": records, "sft": [{"step": 1, "loss": 1.0}]})
    by_what = {row[1]: row for row in rows}
    assert set(by_what) == {"reward (weighted sum)", "accuracy_reward", "completion length (tokens)",
                            "steps in each quarter"}
    assert by_what["reward (weighted sum)"][2:4] == ["0.15", "0.75"]
    assert by_what["steps in each quarter"][2:4] == ["1-2", "7-8"]
    assert rl_change_table({"grpo": records[:7]}) is None  # under two steps a quarter: no table


def test_an_eval_stage_adds_its_compare_pairs_to_the_lineage_ones():
    from r1kit.stages.evaluation import stage_comparisons

    r1 = _recipe("r1-smollm2-cpu")
    assert r1.stage("eval").compare == [("grpo", "sft_more")]
    per_problem = {"sft": _rows(BASE), "grpo": _rows(SFT), "sft_more": _rows(BASE)}
    rows = stage_comparisons(r1, per_problem, extra=r1.stage("eval").compare)
    pairs = list(dict.fromkeys((r["model"], r["baseline"]) for r in rows))
    assert pairs == [("grpo", "sft"), ("sft_more", "sft"), ("grpo", "sft_more")]
    pooled = {(r["model"], r["baseline"]): r for r in rows if r["level"] == "all" and r["metric"] == "strict"}
    assert pooled["grpo", "sft_more"]["diff"] == pooled["grpo", "sft"]["diff"] == pytest.approx(0.2)
