"""The `countdown` task: only solvable instances, a right and shortest reference solution, traces
that pass r1kit's checkers, and a scorer that can't be fooled or crashed by model text."""

from __future__ import annotations

import ast
import json
import operator
from collections import Counter
from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1kit import tasks  # first: importing r1kit.expr before r1kit.tasks is a circular import
from r1kit.errors import R1kitError
from r1kit.render import render
from r1kit.tasks.countdown import LARGE, LEVELS, CountdownTask, Level, shortest_solution, solve_within
from r1kit.verify import check_steps

TASK = CountdownTask()
STYLES = ("compact", "think", "verbal")
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


# ---------------------------------------------------------------- independent checks


def ast_value(expression: str) -> tuple[Fraction, list[int]]:
    """The exact value of an expression over + - * / and whole literals, and the literals used."""
    used: list[int] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        assert isinstance(node, ast.Constant) and type(node.value) is int, ast.dump(node)
        used.append(node.value)
        return Fraction(node.value)

    return walk(ast.parse(expression, mode="eval").body), used


def one_op_values(a: int, b: int) -> set[int]:
    """Positive whole results of one operation on a and b, in either order."""
    out = {a + b, a * b, abs(a - b)}
    for x, y in ((a, b), (b, a)):
        if y and x % y == 0:
            out.add(x // y)
    return {v for v in out if v > 0}


def reachable(numbers: list[int], ops: int) -> set[int]:
    """Every value made with at most `ops` operations (positive whole intermediate results),
    by plain brute force over pairs without any pruning."""
    found = set(numbers)
    if ops == 0:
        return found
    for i, j in combinations(range(len(numbers)), 2):
        rest = [n for k, n in enumerate(numbers) if k not in (i, j)]
        for value in one_op_values(numbers[i], numbers[j]):
            found |= reachable(rest + [value], ops - 1)
    return found


def check_problem(problem, level: int) -> None:
    spec = LEVELS[level]
    numbers, target = problem.metadata["numbers"], problem.metadata["target"]
    assert problem.task == "countdown" and problem.level == level
    assert problem.question == (
        f"Using the numbers {', '.join(map(str, numbers))}, make {target}. "
        "Use each number at most once with + - * /."
    )
    assert len(numbers) == spec.numbers and numbers == sorted(numbers, reverse=True)
    large = [n for n in numbers if n in LARGE and spec.large]
    small = [n for n in numbers if n not in large]
    assert len(large) <= spec.large and len(set(large)) == len(large)
    assert all(1 <= n <= spec.small for n in small) and max(Counter(small).values(), default=0) <= 2
    assert spec.target[0] <= target <= spec.target[1] and target not in numbers

    value, used = ast_value(problem.answer)
    assert value == target
    assert not Counter(used) - Counter(numbers), (problem.answer, numbers)

    steps = problem.steps
    assert len(steps) == len(used) - 1 >= spec.min_steps
    assert steps[-1].result == target
    for step in steps:
        assert OPS[{"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}[step.op]](
            Fraction(step.left), Fraction(step.right)) == step.result
        assert step.result > 0 and Fraction(step.result).denominator == 1
    assert target not in reachable(numbers, spec.min_steps - 1)  # never easier than the level says


@pytest.mark.parametrize("level", TASK.levels)
def test_many_problems_are_right(level):
    for problem in TASK.generate(60, seed=11, level=level):
        check_problem(problem, level)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**40), level=st.sampled_from(TASK.levels))
def test_any_seed_gives_a_right_problem(seed, level):
    check_problem(TASK.make(seed, level), level)


def test_reference_is_a_shortest_solution():
    for level in (1, 2, 3):
        for problem in TASK.generate(15, seed=2, level=level):
            numbers, target = problem.metadata["numbers"], problem.metadata["target"]
            assert target not in reachable(numbers, len(problem.steps) - 1)
            assert target in reachable(numbers, len(problem.steps))


def test_solver_on_known_instances():
    solution = shortest_solution([25, 8, 4, 3], 97, max_steps=3)
    assert [(a, op, b, r) for a, op, b, r in solution] == [(25, "*", 4, 100), (100, "-", 3, 97)]
    assert shortest_solution([4, 3], 4, max_steps=1) == []
    assert shortest_solution([2, 3], 7, max_steps=1) is None  # no solution
    assert shortest_solution([1, 1, 1], 100, max_steps=2) is None
    # The famous 952 from the TV show needs all six numbers and five operations.
    hard = shortest_solution([100, 75, 50, 25, 6, 3], 952, max_steps=5, max_nodes=2_000_000)
    assert hard is not None and len(hard) == 5 and hard[-1][3] == 952
    assert shortest_solution([100, 75, 50, 25, 6, 3], 952, max_steps=5, max_nodes=50) is None  # budget
    assert solve_within([25, 8, 4, 3], 97, 1) is None
    for numbers, target in ((list(range(1, 8)), 100), ([0, 5], 5), ([3, 4], 0)):
        with pytest.raises(R1kitError):
            shortest_solution(numbers, target, max_steps=6)


@pytest.mark.parametrize("level", TASK.levels)
def test_traces_pass_the_step_checker_and_scorer(level):
    for problem in TASK.generate(25, seed=5, level=level):
        for style in STYLES:
            prompt, completion = render(problem, style, TASK)
            assert check_steps(completion, problem.steps).score == 1.0, (style, completion)
            assert check_steps(completion, [s.text() for s in problem.steps]).score == 1.0
            assert TASK.score(completion, problem) == 1.0, (style, completion)
        assert problem.question in TASK.instruction(problem)


def test_deterministic():
    for level in TASK.levels:
        first = CountdownTask().generate(20, seed=7, level=level)
        again = tasks.get("countdown").generate(20, seed=7, level=level)
        assert first == again
        assert [p.question for p in first] != [p.question for p in TASK.generate(20, seed=8, level=level)]
        assert TASK.make("abc", level) == TASK.make("abc", level)


# ---------------------------------------------------------------- the scorer

META = {"numbers": [25, 8, 4, 3], "target": 97}


@pytest.mark.parametrize("metadata", [META, json.dumps(META)])
@pytest.mark.parametrize("predicted", [
    "25 * 4 - 3",
    "(25*4)-3",
    "4 * 25 - 3",
    "25*4-3 = 97",
    "25 \\times 4 - 3",
    "25 × 4 − 3",
    "  25 * 4 - 3 ",
    "(25 * 4) - (3)",
    "((25 * 4) - 3)",
])
def test_scorer_accepts_right_expressions(predicted, metadata):
    assert TASK.score_answer(predicted, "25 * 4 - 3", metadata) == 1.0


def test_scorer_accepts_other_solutions_and_fractions_on_the_way():
    assert TASK.score_answer("(8 + 4) * 8 + 1", "", {"numbers": [8, 8, 4, 1], "target": 97}) == 1.0
    assert TASK.score_answer("(3 + 1 / 2) * 4", "", {"numbers": [4, 3, 2, 1], "target": 14}) == 1.0
    assert TASK.score_answer("8 * 3 * 4 + 1", "", {"numbers": [8, 4, 3, 1], "target": 97}) == 1.0


@pytest.mark.parametrize("predicted", [
    "25 * 4 - 3 - 3 + 3",  # reuses a number
    "25 * 4 - 3 + 3 - 3",
    "25 * 4 - 5 + 2",  # numbers not given
    "100 - 3",
    "25 * 4 - 2",  # wrong value
    "25 * 4 - 3 = 98",  # names a wrong target
    "25 * 4 - 3.0",  # decimals
    "24.5 * 4 - 1",
    "-3 + 25 * 4",  # a negative literal
    "-(3) + 25 * 4",  # unary minus
    "25 * 4 - 3 + 0",
    "25 / 0",  # division by a number not given
    "__import__('os')",
    "__import__('os').system('echo hi')",
    "1 + " * 2500 + "1",  # 10 000 characters
    "9" * 10_000,
    "(" * 100 + "25" + ")" * 100,
    "25 * 4 - 3 = 97 = 97",
    "97",
    "25 * 4 - 3 and 1",
    "",
    None,
    "\\boxed{25*4-3}",
    "25 ** 4",
    "lambda: 97",
])
def test_scorer_rejects(predicted):
    assert TASK.score_answer(predicted, "25 * 4 - 3", META) == 0.0
    assert TASK.score_answer(predicted, "25 * 4 - 3", json.dumps(META)) == 0.0


def test_scorer_rejects_division_by_zero():
    meta = {"numbers": [25, 4, 4, 3], "target": 97}
    assert TASK.score_answer("25 / (4 - 4)", "", meta) == 0.0
    assert TASK.score_answer("3 / (4 - 4) * 25", "", meta) == 0.0


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet="0123456789+-*/(). =x", max_size=80)))
def test_scorer_never_raises(text):
    assert TASK.score_answer(text, "25 * 4 - 3", META) in (0.0, 1.0)


@pytest.mark.parametrize("metadata", [None, "", "not json", {"numbers": [1, 2]}, {"numbers": "1,2", "target": 3},
                                      {"numbers": [1.5], "target": 3}])
def test_scorer_needs_metadata(metadata):
    with pytest.raises(R1kitError, match="metadata"):
        TASK.score_answer("1 + 2", "1 + 2", metadata)


def test_scoring_from_dataset_columns():
    from r1kit.data import to_row
    from r1kit.rewards import accuracy_reward

    problem = TASK.make("row", 4)
    row = to_row(problem, "think")
    assert isinstance(row["metadata"], str)
    assert TASK.score_answer(problem.answer, row["answer"], row["metadata"]) == 1.0
    scores = accuracy_reward([row["completion"], "<answer>1 + 1</answer>"], answer=[row["answer"]] * 2,
                             task=["countdown"] * 2, metadata=[row["metadata"]] * 2)
    assert scores == [1.0, 0.0]


def test_registered_and_levels_checked():
    assert "countdown" in tasks.names()
    with pytest.raises(R1kitError, match="levels 1..4"):
        TASK.generate(1, seed=0, level=0)


@pytest.mark.parametrize("bad", [
    Level(numbers=7, large=0, target=(1, 10), min_steps=1),
    Level(numbers=1, large=0, target=(1, 10), min_steps=1),
    Level(numbers=3, large=4, target=(1, 10), min_steps=1),
    Level(numbers=3, large=0, target=(10, 1), min_steps=1),
    Level(numbers=3, large=0, target=(0, 10), min_steps=1),
    Level(numbers=3, large=0, target=(1, 10), min_steps=3),
    Level(numbers=5, large=0, target=(1, 10), min_steps=1, small=2),
])
def test_bad_levels_are_refused(bad):
    with pytest.raises(R1kitError):
        CountdownTask(levels={1: bad})
