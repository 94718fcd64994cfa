"""The judge: extraction, equivalence, the step checker, and bounded handling of hostile text."""

import dataclasses
import time
from fractions import Fraction

import pytest

from r1kit import tasks
from r1kit.errors import R1kitError
from r1kit.render import completion_text, render
from r1kit.problem import Step
from r1kit.verify import check_steps, extract_answer, extract_steps, is_correct


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>x</think><answer>17</answer>", "17"),
        ("<answer>1</answer> then <answer> 2 </answer>", "2"),
        ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("\\boxed{3}\nand later \\boxed{4}", "4"),  # the last box
        ("\\boxed{3} or \\boxed{4}", "\\boxed{3} or \\boxed{4}"),  # two boxes on a line: two values
        ("\\boxed{\\boxed{4}}", "4"),
        ("4-1=3;12+9=21|answer 21", "21"),
        ("Answer: 17", "17"),
        ("The answer is 17.", "17"),
        ("the answer is **42**.", "42"),
        ("answer 12 or 13", "12 or 13"),
        ("no answer here... just 5", None),
        ("", None),
        ("<answer>unclosed", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "predicted, gold, expected",
    [
        ("12", "12", True), ("12.0", "12", True), ("+12", "12", True), ("24/2", "12", True),
        ("1/2", "0.5", True), ("0.5", "1/2", True), ("1,234", "1234", True), ("-3", "-3", True),
        ("12 or 13", "12", False), ("12, 13", "12", False), ("12,13", "1213", False),
        ("1,23", "123", False), ("13", "12", False), (None, "12", False), ("", "12", False),
        ("nan", "12", False), ("inf", "12", False), ("1e1", "10", False),
        ("\\frac{1}{2}", "1/2", True), ("\\frac{24}{2}", "12", True), ("\\frac{1}{3}", "0.5", False),
    ],
)
def test_is_correct(predicted, gold, expected):
    assert is_correct(predicted, gold) is expected


def wrong_result(step: Step) -> Step:
    """A copy of `step` whose result is off by one."""
    return dataclasses.replace(step, result=step.result + 1)


@pytest.mark.parametrize("task_name", ["arithmetic"])
@pytest.mark.parametrize("style", ["compact", "think", "verbal"])
def test_round_trip_and_corruption(task_name, style):
    task = tasks.get(task_name)
    for level in task.levels:
        for problem in task.generate(40, seed=5, level=level):
            _, completion = render(problem, style, task)
            report = check_steps(completion, problem.steps)
            assert report.score == 1.0, completion
            assert report.wrong == 0 and report.matched == len(problem.steps)
            assert task.score(completion, problem) == 1.0
            if not problem.steps:
                continue
            # Corrupt one step's result: the checker must notice.
            i = len(problem.steps) // 2
            steps = [*problem.steps]
            steps[i] = wrong_result(steps[i])
            corrupted = completion_text(dataclasses.replace(problem, steps=steps), style)
            assert check_steps(corrupted, problem.steps).score < 1.0, corrupted


def test_step_checker_is_in_order_and_counts_false_steps():
    reference = ["4 - 1 = 3", "3 * 3 = 9", "12 + 9 = 21"]
    assert check_steps("4-1=3;3*3=9;12+9=21", reference).score == 1.0
    assert check_steps("12+9=21;3*3=9;4-1=3", reference).score == pytest.approx(1 / 3)  # order matters
    assert check_steps("4-1=3;12+9=21", reference).score == pytest.approx(2 / 3)  # a skipped step
    assert check_steps("4-1=3;3*3=9;12+9=21;5*5=26", reference).score == pytest.approx(2 / 3)  # a false step
    assert check_steps("1+1=2;" * 50, reference).score == 0.0  # true but irrelevant
    assert check_steps("3 times 3 is 9, and 9 plus 12 equals 21", ["3 * 3 = 9", "12 + 9 = 21"]).score == 1.0


def test_extract_steps_understands_every_style():
    for style in ("compact", "think", "verbal"):
        (problem,) = tasks.get("arithmetic").generate(1, seed=2, level=4)
        steps = extract_steps(completion_text(problem, style))
        assert [(s.op, s.left, s.right, s.result) for s in steps] == \
            [(s.op, s.left, s.right, s.result) for s in problem.steps]


HOSTILE = [
    "x" * 1_000_000,
    "9" * 100_000,
    "answer " + "9" * 100_000,
    "<answer>" + "9" * 100_000 + "</answer>",
    "answer 2**1000000",
    "<answer>2^{10^{10}}</answer>",
    "<answer>10^{10^{10^{10}}}</answer>",
    "answer 1e9999",
    "answer __import__('os').system('echo hacked')",
    "answer NaN",
    "\\boxed{" * 50_000,
    "(" * 100_000 + "1" + ")" * 100_000,
    "1+1=2;" * 200_000,
    "<answer>" * 100_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_hostile_text_is_bounded(text):
    start = time.process_time()
    assert is_correct(extract_answer(text), "12") is False
    check_steps(text, ["3 * 4 = 12"])
    assert time.process_time() - start < 10  # a guard against hangs, not a benchmark


def test_step_parse_reads_what_step_text_writes():
    for task_name, level in (("arithmetic", 6), ("linear", 3), ("countdown", 3)):
        task = tasks.get(task_name)
        for problem in task.generate(20, seed=4, level=min(level, task.levels[-1])):
            for step in problem.steps:
                for spaced in (True, False):
                    parsed = Step.parse(step.text(spaced))
                    assert (parsed.op, parsed.left, parsed.right, parsed.result) == (step.op, step.left, step.right, step.result)
    assert Step.parse("(7/2)*2=7") == Step("*", Fraction(7, 2), 2, 7)
    assert Step.parse("-0.5 - -2 = 1.5") == Step("-", Fraction(-1, 2), -2, Fraction(3, 2))


@pytest.mark.parametrize("text", ["3 x 4 = 12", "3 * 4", "The product is 3 * 4 = 12", "3 * 4 = 12; 1 + 1 = 2", ""])
def test_step_parse_is_strict(text):
    """Reference steps are the compiler's own text: anything else is an error, not a guess."""
    with pytest.raises(R1kitError, match="not a step"):
        Step.parse(text)
    with pytest.raises(R1kitError):
        check_steps("3 * 4 = 12", [text])


def test_reference_steps_as_text_or_steps_score_alike():
    (problem,) = tasks.get("arithmetic").generate(1, seed=9, level=5)
    text = completion_text(problem, "think")
    as_text = [step.text() for step in problem.steps]
    assert check_steps(text, as_text) == check_steps(text, problem.steps)
    assert check_steps(text, as_text).score == 1.0
