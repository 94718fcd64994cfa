"""The `linear` task: every equation has exactly one solution, the answer is it, every step and
every intermediate equation is right, and the traces pass r1kit's own checkers."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1kit import tasks  # first: importing r1kit.expr before r1kit.tasks is a circular import
from r1kit.errors import R1kitError
from r1kit.render import render
from r1kit.problem import apply_op
from r1kit.tasks.linear import LEVELS, Level, LinearTask
from r1kit.verify import check_steps

TASK = LinearTask()
PHASES = ("expand", "collect", "isolate", "divide")
STYLES = ("compact", "think", "verbal")


# ---------------------------------------------------------------- an independent evaluator


class Side:
    """A tiny recursive-descent reader for one side of an equation, valued at a given x:
    side := term (('+'|'-') term)* ; term := '-'? factor ;
    factor := NUMBER? ('x' | '(' side ')') | NUMBER   (NUMBER: 12, 2.5 or 7/3)"""

    def __init__(self, text: str, x: Fraction):
        self.tokens = re.findall(r"\d+(?:\.\d+)?(?:/\d+)?|[x()+\-]", text)
        assert "".join(self.tokens) == text.replace(" ", ""), text
        self.i, self.x = 0, x

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        self.i += 1
        return self.tokens[self.i - 1]

    def value(self) -> Fraction:
        total = self.term()
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            total += sign * self.term()
        return total

    def term(self) -> Fraction:
        if self.peek() == "-":
            self.take()
            return -self.factor()
        return self.factor()

    def factor(self) -> Fraction:
        coefficient = Fraction(1)
        if self.peek() and self.peek()[0].isdigit():
            coefficient = Fraction(self.take())  # 12, 2.5 or 7/3
            if self.peek() not in ("x", "("):
                return coefficient
        token = self.take()
        if token == "x":
            return coefficient * self.x
        assert token == "(", self.tokens
        inner = self.value()
        assert self.take() == ")"
        return coefficient * inner

    def read(self) -> Fraction:
        value = self.value()
        assert self.peek() is None, self.tokens
        return value


def residual(equation: str, x: Fraction) -> Fraction:
    left, right = equation.split(" = ")
    return Side(left, x).read() - Side(right, x).read()


def only_solution(equation: str) -> Fraction:
    """The unique solution of a linear equation, asserting that there is exactly one."""
    at0, at1 = residual(equation, Fraction(0)), residual(equation, Fraction(1))
    slope = at1 - at0
    assert slope != 0, f"{equation} has no or infinitely many solutions"
    x = -at0 / slope
    assert residual(equation, Fraction(7, 3)) == at0 + slope * Fraction(7, 3), f"{equation} is not linear"
    return x


# ---------------------------------------------------------------- the checks


_TERM = r"(?:\d*x|\d+|\d*\((?:\d*x) [+-] \d+\))"
CANONICAL = re.compile(rf"-?{_TERM}(?: [+-] {_TERM})* = -?{_TERM}(?: [+-] {_TERM})*")


def check_problem(problem, level: int) -> None:
    assert problem.task == "linear" and problem.level == level
    question = problem.question
    assert CANONICAL.fullmatch(question), question
    assert not re.search(r"(?<!\d)1x|(?<!\d)1\(|\b0x|  ", question), question
    x = Fraction(problem.answer)  # "12", "-3.5" or "-43/3"
    assert only_solution(question) == x
    assert residual(question, x) == 0

    spec = LEVELS[level]
    assert x.denominator <= spec.denominator
    assert spec.solution[0] <= x <= spec.solution[1]

    # every step re-computes, phases come in order, and each phase ends in an equivalent equation
    kinds = [step.kind for step in problem.steps]
    assert kinds == sorted(kinds, key=PHASES.index), kinds
    for step in problem.steps:
        assert apply_op(step.op, Fraction(step.left), Fraction(step.right)) == step.result
    states = [step.state for step in problem.steps if step.state]
    for i, step in enumerate(problem.steps):
        last_of_phase = i + 1 == len(problem.steps) or problem.steps[i + 1].kind != step.kind
        assert bool(step.state) == last_of_phase, (question, kinds)
    assert states, question
    for state in states:
        assert only_solution(state) == x, (question, state)
    assert states[-1] == f"x = {problem.answer}"
    assert len(states) == len(set(kinds))


@pytest.mark.parametrize("level", TASK.levels)
def test_many_problems_are_right(level):
    for problem in TASK.generate(150, seed=11, level=level):
        check_problem(problem, level)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**40), level=st.sampled_from(TASK.levels))
def test_any_seed_gives_a_right_problem(seed, level):
    check_problem(TASK.make(seed, level), level)
    check_problem(TASK.make(f"s{seed}", level), level)


def test_levels_differ_as_documented():
    by_level = {level: TASK.generate(200, seed=3, level=level) for level in TASK.levels}
    assert all(re.fullmatch(r"\d?x [+-] \d+ = -?\d+", p.question) for p in by_level[1])
    assert all(Fraction(p.answer) > 0 for p in by_level[1])
    assert all(p.question.count("x") == 2 and "(" not in p.question for p in by_level[2])
    assert all(p.question.count("(") == 1 for p in by_level[3])
    assert any(p.question.startswith("-") or " - " in p.question for p in by_level[3])
    assert all(p.question.count("(") == 2 for p in by_level[4])
    for level in (1, 2, 3):
        assert all(Fraction(p.answer).denominator == 1 for p in by_level[level])
    fractional = [p for p in by_level[4] if Fraction(p.answer).denominator != 1]
    assert len(fractional) > 50
    assert {step.kind for p in by_level[4] for step in p.steps} == set(PHASES)
    mean_steps = [sum(len(p.steps) for p in ps) / len(ps) for ps in by_level.values()]
    assert mean_steps == sorted(mean_steps)


def test_no_solution_is_refused():
    with pytest.raises(R1kitError):
        TASK.problem([("b", 3, 1, 2), ("x", -1)], [("x", 2), ("c", -4)], level=3)


def test_known_equation():
    problem = TASK.problem([("b", 3, 1, 2), ("c", -4)], [("x", 2), ("c", 5)], level=3)
    assert problem.question == "3(x + 2) - 4 = 2x + 5"
    assert problem.answer == "3"
    assert [(s.text(), s.kind, s.state) for s in problem.steps] == [
        ("3 * 2 = 6", "expand", "3x + 6 - 4 = 2x + 5"),
        ("6 - 4 = 2", "collect", "3x + 2 = 2x + 5"),
        ("3 - 2 = 1", "isolate", ""),
        ("5 - 2 = 3", "isolate", "x = 3"),
    ]
    fraction = TASK.problem([("b", -2, 3, -1)], [("x", 4), ("c", 5)], level=4)
    assert fraction.question == "-2(3x - 1) = 4x + 5"
    assert fraction.answer == "-0.3"
    assert [s.text() for s in fraction.steps][-1] == "3 / -10 = -0.3"
    thirds = TASK.problem([("x", 3)], [("c", 7)], level=1)
    assert (thirds.answer, thirds.steps[-1].text(), thirds.steps[-1].state) == ("7/3", "7 / 3 = 7/3", "x = 7/3")


@pytest.mark.parametrize("level", TASK.levels)
def test_traces_pass_the_step_checker_and_scorer(level):
    for problem in TASK.generate(40, seed=5, level=level):
        for style in STYLES:
            prompt, completion = render(problem, style, TASK)
            assert check_steps(completion, problem.steps).score == 1.0, (style, completion)
            assert check_steps(completion, [s.text() for s in problem.steps]).score == 1.0
            assert TASK.score(completion, problem) == 1.0, (style, completion)
        wrong = str(Fraction(problem.answer) + 1)
        assert TASK.score(f"<answer>{wrong}</answer>", problem) == 0.0
        assert problem.question in TASK.instruction(problem)


def test_deterministic():
    for level in TASK.levels:
        first = LinearTask().generate(30, seed=7, level=level)
        again = tasks.get("linear").generate(30, seed=7, level=level)
        assert first == again
        assert [p.question for p in first] != [p.question for p in TASK.generate(30, seed=8, level=level)]
        assert len({p.id for p in first}) == 30
        assert TASK.make("abc", level) == TASK.make("abc", level)


def test_registered_and_levels_checked():
    assert "linear" in tasks.names()
    assert isinstance(tasks.get("linear"), LinearTask)
    with pytest.raises(R1kitError, match="levels 1..4"):
        TASK.generate(1, seed=0, level=9)


@pytest.mark.parametrize("bad", [
    Level(shapes=()),
    Level(shapes=("xc",)),
    Level(shapes=("c=x",)),  # no x on the left
    Level(shapes=("bc=x",)),  # left side ends in two constants after expansion
    Level(shapes=("xcc=c",)),
    Level(shapes=("x=x",)),  # an integer level needs a constant to adjust
    Level(shapes=("xq=c",)),
    Level(shapes=("xc=c",), solution=(3, 1)),
    Level(shapes=("xc=c",), coef=1),
])
def test_bad_levels_are_refused(bad):
    with pytest.raises(R1kitError):
        LinearTask(levels={1: bad})


def test_custom_levels():
    task = LinearTask(levels={1: Level(shapes=("xb=c",), coef=3, const=5, negatives=True)})
    assert task.levels == (1,)
    for problem in task.generate(50, seed=1, level=1):
        assert only_solution(problem.question) == Fraction(problem.answer)
