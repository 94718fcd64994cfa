"""Digit-level traces (`ArithmeticTask(granularity="digit")`): column addition and subtraction with
carries and borrows, long multiplication down to single digits, every step checked."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1kit import data
from r1kit.errors import R1kitError
from r1kit.expr import digit_steps, evaluate, parse
from r1kit.problem import Step, apply_op
from r1kit.render import completion_text, render
from r1kit.rewards import step_reward
from r1kit.tasks.arithmetic import LEVELS, ArithmeticTask
from r1kit.verify import check_steps

DIGIT = ArithmeticTask(granularity="digit")
OP = ArithmeticTask()


def trace(expression: str) -> list[str]:
    """Each step as `a op b = r`, with its note in brackets."""
    return [s.text() + (f" [{s.state}]" if s.state else "") for s in DIGIT.compile(expression).steps]


@pytest.mark.parametrize(
    "expression, steps",
    [
        ("47 + 35", ["7 + 5 = 12 [carry 1]", "4 + 3 = 7", "7 + 1 = 8", "47 + 35 = 82"]),
        ("503 - 78", ["13 - 8 = 5 [borrow 1]", "7 + 1 = 8", "10 - 8 = 2 [borrow 1]", "5 - 1 = 4",
                      "503 - 78 = 425"]),
        ("38 * 47", ["8 * 7 = 56 [carry 5]", "3 * 7 = 21", "21 + 5 = 26", "38 * 7 = 266",
                     "8 * 4 = 32 [carry 3]", "3 * 4 = 12", "12 + 3 = 15", "38 * 40 = 1520",
                     "6 + 0 = 6", "6 + 2 = 8", "2 + 5 = 7", "266 + 1520 = 1786", "38 * 47 = 1786"]),
        ("7 - 12", ["12 - 7 = 5", "7 - 12 = -5"]),  # a subtraction fact: only the sign step
        ("15 - 38", ["8 - 5 = 3", "3 - 1 = 2", "38 - 15 = 23", "15 - 38 = -23"]),
        ("45 - 43", ["5 - 3 = 2", "4 - 4 = 0", "45 - 43 = 2"]),
        ("-38 + 15", ["8 - 5 = 3", "3 - 1 = 2", "38 - 15 = 23", "-38 + 15 = -23"]),
        ("85 - -82", ["5 + 2 = 7", "8 + 8 = 16 [carry 1]", "85 + 82 = 167", "85 - -82 = 167"]),
        ("-3 * 14", ["4 * 3 = 12 [carry 1]", "1 * 3 = 3", "3 + 1 = 4", "3 * 14 = 42", "-3 * 14 = -42"]),
        ("195 + 7", ["5 + 7 = 12 [carry 1]", "9 + 1 = 10 [carry 1]", "1 + 1 = 2", "195 + 7 = 202"]),
        ("100 - 1", ["10 - 1 = 9 [borrow 1]", "10 - 1 = 9 [borrow 1]", "1 - 1 = 0", "100 - 1 = 99"]),
        ("7 * 105", ["5 * 7 = 35 [carry 3]", "0 * 7 = 0", "0 + 3 = 3", "1 * 7 = 7", "7 * 105 = 735"]),
        ("12 * (3 + 4)", ["3 + 4 = 7", "2 * 7 = 14 [carry 1]", "1 * 7 = 7", "7 + 1 = 8", "12 * 7 = 84"]),
        ("-(47 + 35)", ["7 + 5 = 12 [carry 1]", "4 + 3 = 7", "7 + 1 = 8", "47 + 35 = 82", "-1 * 82 = -82"]),
        # nothing to split: single digits, subtraction facts, zeros, division, fractions, decimals
        ("7 + 5", ["7 + 5 = 12"]),
        ("3 - 8", ["3 - 8 = -5"]),
        ("13 - 8", ["13 - 8 = 5"]),
        ("0 * 47", ["0 * 47 = 0"]),
        ("84 / 12", ["84 / 12 = 7"]),
        ("7 / 2 + 45", ["7 / 2 = 3.5", "3.5 + 45 = 48.5"]),
        ("2.5 * 14", ["2.5 * 14 = 35"]),
    ],
)
def test_golden_traces(expression, steps):
    assert trace(expression) == steps


def test_golden_texts_in_each_style():
    problem = DIGIT.compile("47 + 35")
    assert completion_text(problem, "compact") == "7+5=12;4+3=7;7+1=8;47+35=82|answer 82"
    assert completion_text(problem, "think") == (
        "<think>\n7 + 5 = 12\ncarry 1\n4 + 3 = 7\n7 + 1 = 8\n47 + 35 = 82\n</think>\n<answer>82</answer>"
    )
    verbal = completion_text(problem, "verbal")
    assert "Carry 1." in verbal and "Now we have" not in verbal


def test_step_kinds():
    kinds = [s.kind for s in DIGIT.compile("38 * 47").steps]
    assert kinds == ["digit"] * 3 + ["partial"] + ["digit"] * 3 + ["partial"] + ["digit"] * 3 + ["partial", "op"]
    assert [s.kind for s in DIGIT.compile("15 - 38").steps] == ["digit", "digit", "magnitude", "op"]


@settings(max_examples=400, deadline=None)
@given(a=st.integers(-10**7, 10**7), b=st.integers(-10**7, 10**7), op=st.sampled_from("+-*"))
def test_any_integer_operation_decomposes_into_true_steps(a, b, op):
    steps = digit_steps(op, a, b)
    assert all(s.true for s in steps)
    assert (steps[-1].op, steps[-1].left, steps[-1].right, steps[-1].result) == (op, a, b, apply_op(op, a, b))
    assert steps[-1].kind == "op" and all(s.kind != "op" for s in steps[:-1])
    magnitudes = [s for s in steps if s.kind == "magnitude"]
    assert len(magnitudes) <= 1
    if magnitudes:
        assert magnitudes[0].result == abs(steps[-1].result) and steps[-2] is magnitudes[0]
    for s in steps:
        if s.kind == "digit":  # digit work: single digits, a carry or borrow, or a row's digit plus a carry
            assert 0 <= s.left <= 89 and 0 <= s.right <= 10 and 0 <= s.result <= 89
            if s.op == "*":
                assert s.left <= 9 and s.right <= 9
        if s.state:
            assert s.state in ("borrow 1", *(f"carry {c}" for c in range(1, 9)))


def op_groups(steps: list[Step]) -> list[list[Step]]:
    """The trace cut after each op-level step: one group per operation."""
    groups, current = [], []
    for step in steps:
        current.append(step)
        if step.kind == "op":
            groups.append(current)
            current = []
    assert not current, "a trace ends with an op-level step"
    return groups


def as_tuple(step: Step):
    return step.op, step.left, step.right, step.result


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_same_problems_and_op_steps_at_every_granularity(level):
    fine = ArithmeticTask(granularity="partial")
    op, digit, partial = (t.generate(120, seed=9, level=level) for t in (OP, DIGIT, fine))
    assert [(p.id, p.question, p.answer) for p in op] == [(p.id, p.question, p.answer) for p in digit] \
        == [(p.id, p.question, p.answer) for p in partial]
    for plain, fine_problem in zip(op, digit):
        groups = op_groups(fine_problem.steps)
        # the op-level trace is the digit trace's op steps, in order: each group ends with it
        assert [as_tuple(g[-1]) for g in groups] == [as_tuple(s) for s in plain.steps]
        for step in fine_problem.steps:
            assert step.true
        for group, step in zip(groups, plain.steps):
            whole = type(step.left) is int and type(step.right) is int
            if step.op == "/" or not whole or (abs(step.left) < 10 and abs(step.right) < 10):
                assert len(group) == 1, group  # nothing to split
            if len(group) > 1:
                assert group[-2].kind in ("digit", "partial", "magnitude")


def test_same_seed_gives_byte_identical_problems():
    for level in sorted(LEVELS):
        first = ArithmeticTask(granularity="digit").generate(60, seed=21, level=level)
        again = ArithmeticTask(granularity="digit").generate(60, seed=21, level=level)
        assert repr(first) == repr(again)


@pytest.mark.parametrize("style", ["compact", "think", "verbal"])
def test_rendered_digit_traces_check_and_score(style):
    for level in sorted(LEVELS):
        for problem in DIGIT.generate(60, seed=5, level=level):
            _, completion = render(problem, style, DIGIT)
            report = check_steps(completion, problem.steps)
            assert report.score == 1.0, completion
            assert report.wrong == 0 and report.matched == report.claimed == len(problem.steps)
            assert DIGIT.score(completion, problem) == 1.0
            # the dataset's `steps` column (strings) is judged the same way by the step reward
            assert step_reward([completion], [[s.text() for s in problem.steps]]) == [1.0]
            digit_indices = [i for i, s in enumerate(problem.steps) if s.kind == "digit"]
            if digit_indices:  # one corrupted digit step lowers the score
                i = digit_indices[len(digit_indices) // 2]
                steps = [*problem.steps]
                steps[i] = dataclasses.replace(steps[i], result=steps[i].result + 1)
                corrupted = completion_text(dataclasses.replace(problem, steps=steps), style)
                assert check_steps(corrupted, problem.steps).score < 1.0, corrupted


def test_wrong_or_forgotten_carry_lowers_the_step_score():
    reference = DIGIT.compile("47 + 35").steps
    assert check_steps("7+5=12;4+3=7;7+1=8;47+35=82", reference).score == 1.0
    wrong_carry = check_steps("7+5=12;4+3=7;7+2=9;47+35=92", reference)  # carried 2: true, not the trace
    assert wrong_carry.wrong == 1 and wrong_carry.matched == 2 and wrong_carry.score == pytest.approx(1 / 4)
    miscounted = check_steps("7+5=12;4+3=7;7+1=9;47+35=92", reference)  # a false column
    assert miscounted.wrong == 2 and miscounted.score == 0.0
    forgotten = check_steps("7+5=12;4+3=7;47+35=72", reference)
    assert forgotten.wrong == 1 and forgotten.score == pytest.approx(1 / 4)
    borrow = DIGIT.compile("503 - 78").steps
    no_borrow = check_steps("<think>\n3 - 8 = -5\n0 - 7 = -7\n503 - 78 = 425\n</think>", borrow)
    assert no_borrow.matched == 1 and no_borrow.score < 1.0


def test_data_generate_passes_granularity_through():
    digit = data.generate("arithmetic", [1, 2, 3, 4], 40, seed=3, granularity="digit")
    plain = data.generate("arithmetic", [1, 2, 3, 4], 40, seed=3)
    assert [(p.id, p.question, p.answer) for p in digit] == [(p.id, p.question, p.answer) for p in plain]
    assert sum(len(p.steps) for p in digit) > sum(len(p.steps) for p in plain)
    assert any(s.kind == "digit" for p in digit for s in p.steps)


def test_granularity_is_one_name():
    partial = ArithmeticTask(granularity="partial")
    assert [s.text() for s in partial.compile("36 * 18").steps] == ["36 * 10 = 360", "36 * 8 = 288", "360 + 288 = 648"]
    assert ArithmeticTask().granularity == ArithmeticTask(granularity=None).granularity == OP.granularity == "op"
    assert repr(ArithmeticTask().generate(30, seed=1, level=3)) == repr(OP.generate(30, seed=1, level=3))
    with pytest.raises(R1kitError, match="granularity"):
        ArithmeticTask(granularity="bits")
    with pytest.raises(TypeError):
        ArithmeticTask(fine_steps=True)  # the old name is gone
    assert [s.text() for s in evaluate(parse("47 + 35"), granularity="digit")[1]][-1] == "47 + 35 = 82"


def test_a_recipe_with_fine_steps_is_pointed_to_granularity():
    from r1kit import recipe

    stages = [{"name": "sft", "kind": "sft", "data": {"fine_steps": True}}]
    with pytest.raises(R1kitError, match=r"stages.sft.data: unknown key 'fine_steps' \(did you mean 'granularity'"):
        recipe.validate({"name": "r", "model": {"preset": "tiny-1m"}, "stages": stages})
