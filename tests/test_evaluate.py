"""Evaluation's numbers against known values, per-problem rows, and the report on a fixture."""

from __future__ import annotations

import json
import math

import pytest

from r1kit.evaluate import EvalResult, evaluate_model, pass_at_k, sampled_scores, wilson
from r1kit.problem import Problem
from r1kit.prompting import PromptFormat
from r1kit.report import write_report


def test_wilson_known_values():
    # Wilson score intervals at z = 1.96, by hand: 0 of n has upper bound z²/(n + z²), n of n lower bound n/(n + z²).
    assert wilson(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson(50, 100) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    assert wilson(10, 10) == pytest.approx((0.72246, 1.0), abs=1e-5)
    assert wilson(0, 0) == (0.0, 1.0)


def test_pass_at_k_known_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))  # 0.91667
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # only 2 wrong samples: every 3 drawn hold a right one
    assert pass_at_k(8, 8, 8) == 1.0


PROBLEM = Problem(id="p", task="arithmetic", level=1, question="2 + 3", answer="5")


@pytest.mark.parametrize("texts, expected", [
    (["answer 5", "answer 5", "answer 4"], (1.0, 1.0)),
    (["answer 4", "answer 4", "answer 5"], (1.0, 0.0)),  # right once, but the vote goes to 4
    (["answer 10/2", "answer 5.0", "answer 4"], (1.0, 1.0)),  # equal numbers vote together
    (["answer 4", "no answer", "answer 3"], (0.0, 0.0)),
    (["nothing", "nothing", "answer 5"], (1.0, 1.0)),  # unanswered samples do not vote
])
def test_pass_and_majority_of_samples(texts, expected):
    scored = sampled_scores(PROBLEM, texts, len(texts))
    assert (scored.pass_k, scored.maj_k) == pytest.approx(expected)
    assert (scored.samples, scored.correct) == (len(texts), sum(t in ("answer 5", "answer 10/2", "answer 5.0") for t in texts))


class Scripted:
    """An engine that answers from a script (the engine interface: `generate_texts`)."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def generate_texts(self, tokenizer, prompts, *, samples, greedy, settings, progress=None):
        if progress is not None:
            progress(len(prompts))
        return [[self.answers[p.strip()]] * samples for p in prompts]


class Chars:
    """Enough of a tokenizer for counting: one token per character."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(range(len(text)))}


def test_evaluate_model_keeps_every_problem_and_one_row_shape():
    problems = [Problem(id=f"p{i}", task="arithmetic", level=1 + i % 2, question=f"{i}+1", answer=str(i + 1))
                for i in range(6)]
    answers = {p.question: f"answer {p.answer if i != 3 else 0}" for i, p in enumerate(problems)}
    seen = []
    result = evaluate_model(Scripted(answers), Chars(), problems, name="m", prompt_format=PromptFormat("compact", False),
                            progress=seen.append)
    assert sum(seen) == len(problems)
    assert [r["id"] for r in result.problems] == [p.id for p in problems]
    wrong = next(r for r in result.problems if not r["correct"])
    assert (wrong["id"], wrong["gold"], wrong["extracted"], wrong["completion"]) == ("p3", "4", "0", "answer 0")
    rows = result.table_rows()
    assert [(r["level"], r["n"], r["accuracy"]) for r in rows] == [(1, 3, 1.0), (2, 3, pytest.approx(2 / 3)),
                                                                     ("all", 6, pytest.approx(5 / 6))]
    assert rows[-1]["ci95"] == pytest.approx(list(wilson(5, 6)))
    examples = result.examples(per_verdict=2)
    assert [e["correct"] for e in examples] == [False, True, True]


def test_report_on_a_fixture(tmp_path):
    result = EvalResult(model="sft", k=1)
    evals = [{"model": "base", "level": 1, "n": 10, "accuracy": 0.1, "ci95": [0.02, 0.4]},
             {"model": "base", "level": "all", "n": 10, "accuracy": 0.1, "ci95": [0.02, 0.4]},
             {"model": "sft", "level": 1, "n": 10, "accuracy": 0.9, "ci95": [0.6, 0.98]},
             {"model": "sft", "level": "all", "n": 10, "accuracy": 0.9, "ci95": [0.6, 0.98]}]
    totals = {"wall_s": 12.0, "cpu_s": 20.0, "train_tokens": 1000, "generated_tokens": 50, "flops": 3e12, "student_flops": 3e12}
    stage = {"stage": "sft", "kind": "sft", "attempts": 2, "peak_memory_bytes": 2**30, **totals}
    results = {
        "recipe": "fixture", "evals": evals, "retention": [{"model": "sft", "skill": "copy", "n": 5, "accuracy": 0.4}],
        "eval_details": {"eval": {"sft": {**result.as_dict(), "examples": [
            {"question": "3 − 1", "gold": "2", "completion": "3−1=2 → answer 2", "correct": True},
            {"question": "7 + 5", "gold": "12", "completion": "answer 11", "correct": False}]}}},
        "lm_eval": {}, "collections": {},
        "curves": {"sft": [{"step": s, "loss": 2.0 / s} for s in range(1, 6)],
                   "grpo": [{"step": 5, "reward": 0.5}, {"step": 5, "health": "zero_variance", "value": 0.9,
                                                         "message": "90% of groups had one reward", "advice": "harder levels"}]},
        "ledger": {"attempts": [], "stages": [stage], "total_all": totals, "total_final": totals},
        "costs": {"sft": {"own_stages": ["sft"], "lineage_stages": ["base", "sft"], "own": totals, "lineage": totals}},
    }
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    md_path, html_path = write_report(tmp_path)
    md = md_path.read_text(encoding="utf-8")
    assert "| sft | 90.0% [60.0%, 98.0%] (n=10) | 90.0% [60.0%, 98.0%] (n=10) |" in md
    assert "| model | level 1 | all |" in md
    assert "| sft | 40.0% |" in md  # retention
    assert "[sft] bad 7 + 5 = 12  ->  'answer 11'" in md and "3−1=2 → answer 2" in md  # a failure beside a success
    assert "| sft | sft | 2 | 12.0 | 20.0 | 1,000 | 50 | 3.00 TFLOP | 1024 MiB |" in md
    assert "| grpo | 5 | zero_variance | 0.9 | 90% of groups had one reward | harder levels |" in md
    assert (tmp_path / "plot0.png").read_bytes()[:4] == b"\x89PNG"  # the accuracy plot
    assert md.count("![") == 2  # accuracy and training curves
    page = html_path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2 and "<meta charset='utf-8'>" in page and "3−1=2" in page


def test_strict_and_flexible_extraction():
    """A right answer in the wrong format counts as flexible only: format and arithmetic told apart."""
    problems = [Problem(id=f"q{i}", task="arithmetic", level=1, question=q, answer=a)
                for i, (q, a) in enumerate([("38+45", "83"), ("2+2", "4"), ("9-3", "6"), ("7*3", "21")])]
    answers = {"38+45": "So, the final answer is `38 + 45 = 83`.",  # right, unformatted
               "2+2": "<answer>4</answer>",                         # right, formatted
               "9-3": "9 - 3 = 5, so 5",                            # wrong either way
               "7*3": "answer 12, no wait: 21"}                      # strict reads 12; the text commits to 21
    result = evaluate_model(Scripted(answers), Chars(), problems, prompt_format=PromptFormat("compact", False))
    verdicts = [(r["correct"], r["flexible_correct"]) for r in result.problems]
    assert verdicts == [(False, True), (True, True), (False, False), (False, True)]
    overall = result.table_rows()[-1]
    assert (overall["accuracy"], overall["flexible"]) == (0.25, 0.75)
    assert overall["flexible_ci95"] == pytest.approx(list(wilson(3, 4)))


class Sampling(Scripted):
    """A scripted engine that also samples: its own list of k answers per question, and the
    temperature each sampling call was asked for."""

    def __init__(self, answers: dict[str, str], samples: dict[str, list[str]]):
        super().__init__(answers)
        self.samples, self.temperatures = samples, []

    def generate_texts(self, tokenizer, prompts, *, samples, greedy, settings, progress=None):
        if greedy:
            return super().generate_texts(tokenizer, prompts, samples=samples, greedy=greedy, settings=settings,
                                          progress=progress)
        self.temperatures.append(settings.temperature)
        if progress is not None:
            progress(len(prompts))
        return [self.samples[p.strip()] for p in prompts]


def sampling_engine(problems: list[Problem], k: int) -> Sampling:
    """Greedy right on even problems; problem i gets i % (k + 1) of its k samples right, the rest
    one wrong answer, given first (so a tied vote goes to it)."""
    answers = {p.question: f"answer {p.answer if i % 2 == 0 else 0}" for i, p in enumerate(problems)}
    samples = {p.question: ["answer 0"] * (k - i % (k + 1)) + [f"answer {p.answer}"] * (i % (k + 1))
               for i, p in enumerate(problems)}
    return Sampling(answers, samples)


def test_sampled_metrics_per_level_and_per_problem():
    from r1kit.engines import GenerationSettings

    k = 4
    problems = [Problem(id=f"p{i}", task="arithmetic", level=1 + i % 2, question=f"{i}+1", answer=str(i + 1))
                for i in range(12)]
    engine = sampling_engine(problems, k)
    result = evaluate_model(engine, Chars(), problems, prompt_format=PromptFormat("compact", False), k=k,
                            settings=GenerationSettings(temperature=0.6))
    assert engine.temperatures == [0.6]
    rows, per_problem = result.table_rows(), result.problems
    fractions = [r["sampled_correct"] / r["samples"] for r in per_problem]
    assert [r["sampled_correct"] for r in per_problem] == [i % (k + 1) for i in range(12)]
    overall = rows[-1]
    assert overall["sampled@1"] == pytest.approx(sum(fractions) / len(fractions))
    assert (overall["temperature"], overall["sampled_n"], overall["n"]) == (0.6, 12, 12)
    for level, row in zip((1, 2), rows):
        mine = [f for f, r in zip(fractions, per_problem) if r["level"] == level]
        assert row["sampled@1"] == pytest.approx(sum(mine) / len(mine))
    for row in [*rows, *per_problem]:
        share = row["sampled@1"] if "sampled@1" in row else row["sampled_correct"] / row["samples"]
        assert row[f"pass@{k}"] >= share and row[f"pass@{k}"] >= row[f"maj@{k}"]
    assert overall[f"pass@{k}"] == pytest.approx(9 / 12)  # problems 0, 5 and 10 have no right sample
    assert overall[f"maj@{k}"] == pytest.approx(4 / 12)  # 3 or 4 of 4 right (2 of 4 ties, lost): problems 3, 4, 8, 9
    low, high = overall["sampled@1_ci95"]
    assert low < overall["sampled@1"] < high
    assert overall[f"pass@{k}_ci95"] == pytest.approx(list(wilson(9, 12)))
    assert result.as_dict()["by_level"]["1"]["sampled@1"] == rows[0]["sampled@1"]


def test_sample_count_samples_the_first_problems_of_each_level():
    k = 2
    problems = [Problem(id=f"p{i}", task="arithmetic", level=1 + i % 2, question=f"{i}+1", answer=str(i + 1))
                for i in range(10)]
    seen = []
    result = evaluate_model(sampling_engine(problems, k), Chars(), problems, prompt_format=PromptFormat("compact", False),
                            k=k, sample_count=2, progress=seen.append)
    assert [r["id"] for r in result.problems if "samples" in r] == ["p0", "p1", "p2", "p3"]
    assert sum(seen) == 10 + k * 4
    rows = result.table_rows()
    assert [(r["n"], r["sampled_n"]) for r in rows] == [(5, 2), (5, 2), (10, 4)]
    assert rows[-1]["sampled@1"] == pytest.approx((0 + 1 + 2 + 0) / 2 / 4)
    assert rows[-1]["accuracy"] == pytest.approx(5 / 10)  # greedy still over every problem


def test_clustered_wilson_lies_between_one_draw_and_k_independent_draws():
    from r1kit.evaluate import clustered_wilson

    k = 8
    agree = [1.0] * 30 + [0.0] * 70  # each problem's samples all agree: 100 draws' worth
    assert clustered_wilson(agree, k) == pytest.approx(wilson(30, 100))
    alike = [0.5] * 100  # every problem alike: as if 800 independent samples
    assert clustered_wilson(alike, k) == pytest.approx(wilson(400, 800))
    mixed = [0.25, 0.5, 0.75, 0.5] * 25
    low, high = clustered_wilson(mixed, k)
    narrow, wide = wilson(400, 800), wilson(50, 100)
    assert wide[0] <= low < 0.5 < high <= wide[1] and high - low >= narrow[1] - narrow[0]
    assert clustered_wilson([0.0] * 10, k) == pytest.approx(wilson(0, 10)) and clustered_wilson([], k) == (0.0, 1.0)


def test_temperature_reaches_generation_on_a_real_tiny_model():
    """Near 0 every sample is the greedy completion; at 1 a tiny random model's samples are not."""
    from r1kit import tasks
    from r1kit.engines import GenerationSettings, generate_texts
    from r1kit.evaluate import problems_from_task
    from r1kit.models import build_char_tokenizer, build_tiny_model

    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    prompts = [PromptFormat("compact", False).prompt(p, tokenizer, tasks.get(p.task))
               for p in problems_from_task("arithmetic", [2], 3, 0)]
    settings = lambda t: GenerationSettings(max_new_tokens=12, temperature=t)  # noqa: E731
    greedy = generate_texts(model, tokenizer, prompts, settings=settings(1.0))
    cold = generate_texts(model, tokenizer, prompts, samples=3, greedy=False, settings=settings(1e-6))
    warm = generate_texts(model, tokenizer, prompts, samples=3, greedy=False, settings=settings(1.0))
    assert cold == [[g[0]] * 3 for g in greedy]
    assert warm != cold


def test_a_short_prompt_is_read_strictly_as_the_answer_alone():
    """Under `short` one line without words is the answer slot (`8`, `2 + 5 = 7`); prose is read only flexibly."""
    problems = [Problem(id=f"p{i}", task="arithmetic", level=1, question=f"{i} + 5", answer=str(i + 5)) for i in range(4)]
    texts = {"0 + 5": "5", "1 + 5": " 6.", "2 + 5": "2 + 5 = 7", "3 + 5": "The answer is 8."}
    prompts = {f"Compute {q}.\nGive only the final answer.": text for q, text in texts.items()}
    result = evaluate_model(Scripted(prompts), Chars(), problems, prompt_format=PromptFormat("short", False), k=2)
    rows = {r["question"]: r for r in result.problems}
    assert [rows[q]["correct"] for q in texts] == [True, True, True, False]
    assert [rows[q]["flexible_correct"] for q in texts] == [True, True, True, True]
    assert [rows[q]["extracted"] for q in texts] == ["5", "6", "7", None]
    assert [rows[q]["sampled_correct"] for q in texts] == [2, 2, 2, 0]  # the samples are read the same way
    compact = evaluate_model(Scripted({"0+5": "answer 5"}), Chars(), problems[:1], prompt_format=PromptFormat("compact", False))
    assert compact.problems[0]["correct"]  # other styles keep the answer-slot reading


@pytest.mark.parametrize("text, expected", [
    ("8", "8"), (" -1.5.\n", "-1.5"), ("\u221212", "-12"), ("3/4", "3/4"),
    ("3 + 5 = 8", "8"), ("3 + 5 = 8.", "8"), ("1 + 1 = 2 = 3", "3"), ("8 9", None), ("3 + 5 =", None),
    ("answer 8", None), ("8\n9", None), ("", None), (None, None), ("1" * 41, None),
])
def test_extract_bare(text, expected):
    from r1kit.verify import extract_bare

    assert extract_bare(text) == expected
