"""`countdown`: reach a target from given numbers with `+ - * /`, each number used at most once.

    Using the numbers 25, 8, 4, 3, make 97. Use each number at most once with + - * /.
    → 25 * 4 = 100, 100 - 3 = 97; answer `25 * 4 - 3`

Only solvable instances are generated. A problem is drawn in three moves: pick the numbers
(large ones from 25, 50, 75, 100, small ones from 1..10 with at most two of each, as in the TV
game; level 1 uses 1..20 so that it has enough distinct problems), combine a random subset of
them into a target (positive whole intermediate results), then confirm with a bounded
exhaustive search: iterative deepening over pairs of numbers, as in the classic solver, which
proves there is no shorter solution and records the *shortest* one as the reference. Its operations are the reference steps; the answer is its expression.
Instances whose shortest solution is shorter than the level's `min_steps`, or whose search
exceeds `MAX_NODES`, are drawn again.

| level | numbers | small numbers | large numbers (25 50 75 100) | target | shortest solution | distinct problems |
|---|---|---|---|---|---|---|
| 1 | 3 | 1..20 | none | 10..199 | 2 operations (uses all three) | ≈ 14,000 |
| 2 | 4 | 1..10 | up to 1 | 20..200 | ≥ 2 operations | ≈ 79,000 |
| 3 | 5 | 1..10 | up to 2 | 100..500 | ≥ 3 operations | many more |
| 4 | 6 | 1..10 | up to 4 | 100..999 | ≥ 3 operations | many more |

Small numbers come at most two of each; the count of large ones is drawn from 0 to the limit.

Scoring (`score_answer`) never evaluates model text with Python: the predicted expression is
read by r1kit's own bounded parser. It scores 1.0 when the expression uses only whole,
non-negative literals, no unary minus, a sub-multiset of the given numbers, and its exact value
equals the target (intermediate fractions and negatives are allowed; `a = target` at the end is
tolerated, and `×`, `÷`, `\\times`, `\\div`, `\\cdot` read as `*` and `/`). Anything else, including
text that does not parse or divides by zero, scores 0.0. The numbers and target come from
`metadata`, a dict or the JSON string of a dataset's `metadata` column.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from r1kit.errors import R1kitError
from r1kit.expr import BinOp, Neg, Num, evaluate, number, parse, to_text, tokenize
from r1kit.numbers import parse_number
from r1kit.problem import Problem, Step, problem_id
from r1kit.tasks.base import Task

LARGE = (25, 50, 75, 100)
MAX_NUMBERS = 6
MAX_NODES = 20_000  # search budget per instance; past it the instance is drawn again
MAX_ANSWER_CHARS = 300


@dataclass(frozen=True)
class Level:
    """A difficulty level as data (documented as a table in the module docstring)."""

    numbers: int  # how many numbers are given
    large: int  # at most this many of them come from LARGE (the count is drawn 0..large)
    target: tuple[int, int]  # the range of the target
    min_steps: int  # the shortest solution needs at least this many operations
    small: int = 10  # the other numbers come from 1..small, at most two of each

    def validate(self) -> None:
        if not 2 <= self.numbers <= MAX_NUMBERS:
            raise R1kitError(f"countdown numbers must be 2..{MAX_NUMBERS}, got {self.numbers}")
        if not 0 <= self.large <= min(len(LARGE), self.numbers):
            raise R1kitError(f"countdown large must be 0..{min(len(LARGE), self.numbers)}, got {self.large}")
        if self.small < 1 or 2 * self.small < self.numbers:
            raise R1kitError(f"countdown small must be >= 1 and leave enough numbers (two of each), got {self.small}")
        if not 1 <= self.target[0] <= self.target[1]:
            raise R1kitError(f"countdown target range must satisfy 1 <= low <= high, got {self.target}")
        if not 1 <= self.min_steps <= self.numbers - 1:
            raise R1kitError(f"countdown min_steps must be 1..{self.numbers - 1}, got {self.min_steps}")


LEVELS: dict[int, Level] = {
    1: Level(numbers=3, large=0, target=(10, 199), min_steps=2, small=20),
    2: Level(numbers=4, large=1, target=(20, 200), min_steps=2),
    3: Level(numbers=5, large=2, target=(100, 500), min_steps=3),
    4: Level(numbers=6, large=4, target=(100, 999), min_steps=3),
}

# An operation of a solution: (left, op, right, result), all positive integers, left >= right.
Operation = tuple[int, str, int, int]


class CountdownTask(Task):
    name = "countdown"
    levels = tuple(LEVELS)
    default_levels = LEVELS

    def instruction(self, problem: Problem) -> str:
        return f"{problem.question} Give the answer as one expression."

    def compact_prompt(self, problem: Problem) -> str:
        numbers, target = read_metadata(problem.metadata)
        return f"{','.join(map(str, numbers))}->{target}"

    def make(self, seed: int, level: int) -> Problem:
        self.check_level(level)
        spec, rng = self.level_specs[level], random.Random(seed)
        for _ in range(1000):
            numbers = draw_numbers(rng, spec)
            target = random_target(rng, numbers, spec.min_steps + 1)
            if not spec.target[0] <= target <= spec.target[1] or target in numbers:
                continue
            solution = shortest_solution(numbers, target, max_steps=len(numbers) - 1)
            if solution is not None and len(solution) >= spec.min_steps:
                return self.problem(numbers, target, solution, level)
        raise R1kitError(f"could not draw a countdown instance for level {level}; loosen its settings")

    def problem(self, numbers: list[int], target: int, solution: list[Operation], level: int) -> Problem:
        numbers = sorted(numbers, reverse=True)  # canonical, so a reordering is the same question
        question = (f"Using the numbers {', '.join(map(str, numbers))}, make {target}. "
                    "Use each number at most once with + - * /.")
        answer, steps = reference(numbers, solution)
        return Problem(
            id=problem_id(self.name, level, question),
            task=self.name,
            level=level,
            question=question,
            answer=answer,
            steps=steps,
            metadata={"numbers": numbers, "target": target},
        )

    def score_answer(self, predicted: str | None, problem_answer: str,
                     metadata: dict[str, Any] | str | None = None) -> float:
        numbers, target = read_metadata(metadata)
        return 1.0 if reaches(predicted, numbers, target) else 0.0


# ---------------------------------------------------------------- generation


def draw_numbers(rng: random.Random, spec: Level) -> list[int]:
    large = rng.randint(0, spec.large)
    small = rng.sample(range(1, spec.small + 1), spec.numbers - large, counts=[2] * spec.small)
    return rng.sample(LARGE, large) + small


def random_target(rng: random.Random, numbers: list[int], min_used: int) -> int:
    """Combine a random subset of at least `min_used` numbers, keeping every result a positive integer."""
    values = rng.sample(numbers, rng.randint(min(min_used, len(numbers)), len(numbers)))
    while len(values) > 1:
        i, j = sorted(rng.sample(range(len(values)), 2))
        high, low = max(values[i], values[j]), min(values[i], values[j])
        choices = [high + low]
        if high > low:
            choices.append(high - low)
        if low > 1:
            choices.append(high * low)
            if high % low == 0:
                choices.append(high // low)
        del values[j], values[i]
        values.append(rng.choice(choices))
    return values[0]


# ---------------------------------------------------------------- search


def _children(values: tuple[int, ...]):
    """Every way to replace two values (sorted largest first) by one result, skipping moves that
    never shorten a solution: results equal to an operand (`a * 1`, `a / 1`, `2a - a`, `a² / a`)
    and zero."""
    m = len(values)
    for i in range(m - 1):
        high = values[i]
        for j in range(i + 1, m):
            low = values[j]
            rest = values[:i] + values[i + 1:j] + values[j + 1:]
            yield rest, (high, "+", low, high + low)
            if high != low and high - low != low:
                yield rest, (high, "-", low, high - low)
            if low != 1:
                yield rest, (high, "*", low, high * low)
                if high % low == 0 and high // low != low:
                    yield rest, (high, "/", low, high // low)


def _last_step(values: tuple[int, ...], target: int) -> Operation | None:
    """One operation on two of `values` (sorted largest first) that gives `target`."""
    m = len(values)
    for i in range(m - 1):
        high = values[i]
        for j in range(i + 1, m):
            low = values[j]
            if high + low == target:
                return (high, "+", low, target)
            if high - low == target:
                return (high, "-", low, target)
            if high * low == target and low != 1:
                return (high, "*", low, target)
            if high == target * low and low != 1:
                return (high, "/", low, target)
    return None


def _last_two(values: tuple[int, ...], target: int) -> tuple[Operation, Operation] | None:
    """Two operations that give `target`: one on a pair of `values`, then one with its result and
    a third value (found by looking the needed value up, not by trying every value)."""
    for rest, first in _children(values):
        r = first[3]
        needed = [(target - r, "+")] if target > r else []
        if r > target:
            needed.append((r - target, "-"))
            if r % target == 0:
                needed.append((r // target, "/"))
        needed.append((r + target, "-"))
        if target % r == 0:
            needed.append((target // r, "*"))
        needed.append((r * target, "/"))
        for c, op in needed:
            if c in rest:
                high, low = (r, c) if r >= c else (c, r)
                return first, (high, op, low, target)
    return None


class _Budget(Exception):
    pass


def solve_within(numbers: list[int], target: int, steps: int, max_nodes: int = MAX_NODES) -> list[Operation] | None:
    """A solution with exactly `steps` operations (or None), by depth-first search over pairs.

    States are multisets of values; each is visited once per depth (the depth of a state is
    fixed by its size). Raises `_Budget` past `max_nodes` states.
    """
    seen: set[tuple[int, ...]] = set()
    path: list[Operation] = []
    nodes = 0

    def search(values: tuple[int, ...], left: int) -> bool:
        nonlocal nodes
        nodes += 1
        if nodes > max_nodes:
            raise _Budget
        if left == 1:
            last = _last_step(values, target)
            if last is not None:
                path.append(last)
            return last is not None
        if left == 2:
            last_two = _last_two(values, target)
            if last_two is not None:
                path.extend(last_two)
            return last_two is not None
        for rest, operation in _children(values):
            child = tuple(sorted(rest + (operation[3],), reverse=True))
            if child in seen:
                continue
            seen.add(child)
            path.append(operation)
            if search(child, left - 1):
                return True
            path.pop()
        return False

    if steps < 1 or steps > len(numbers) - 1:
        return None
    return path if search(tuple(sorted(numbers, reverse=True)), steps) else None


def shortest_solution(numbers: list[int], target: int, *, max_steps: int,
                      max_nodes: int = MAX_NODES) -> list[Operation] | None:
    """The shortest solution (iterative deepening, so every shorter length was searched in full),
    or None when there is none within `max_steps` operations or the search passes `max_nodes`."""
    if len(numbers) > MAX_NUMBERS or any(type(n) is not int or n < 1 for n in numbers) or target < 1:
        raise R1kitError(f"countdown search takes at most {MAX_NUMBERS} positive whole numbers and a "
                         f"positive target, got {numbers} and {target}")
    if target in numbers:
        return []
    for steps in range(1, min(max_steps, len(numbers) - 1) + 1):
        try:
            solution = solve_within(numbers, target, steps, max_nodes)
        except _Budget:
            return None
        if solution is not None:
            return solution
    return None


def reference(numbers: list[int], solution: list[Operation]) -> tuple[str, list[Step]]:
    """The solution as one expression, and its steps in the order the expression evaluates."""
    pool: list[tuple[int, Any]] = [(n, number(n)) for n in numbers]
    for high, op, low, result in solution:
        left = pool.pop(next(i for i, (v, _) in enumerate(pool) if v == high))
        right = pool.pop(next(i for i, (v, _) in enumerate(pool) if v == low))
        pool.append((result, BinOp(op, left[1], right[1])))
    tree = pool[-1][1]
    _, steps = evaluate(tree)
    return to_text(tree), steps


# ---------------------------------------------------------------- scoring


def read_metadata(metadata: dict[str, Any] | str | None) -> tuple[list[int], int]:
    """`numbers` and `target` from a problem's metadata, or from the JSON string a dataset stores."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError as error:
            raise R1kitError(f"countdown metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or "numbers" not in metadata or "target" not in metadata:
        raise R1kitError(
            "countdown scoring needs the problem's metadata with 'numbers' and 'target'; "
            "pass the dataset's `metadata` column to the scorer"
        )
    numbers, target = metadata["numbers"], metadata["target"]
    if not (isinstance(numbers, list) and all(type(n) is int for n in numbers) and type(target) is int):
        raise R1kitError(f"countdown metadata needs integer 'numbers' and 'target', got {metadata!r}")
    return numbers, target


_SYMBOLS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("÷", "/"), ("−", "-"))


def reaches(predicted: str | None, numbers: list[int], target: int) -> bool:
    """True when `predicted` is an expression over a sub-multiset of `numbers` equal to `target`."""
    if not predicted or len(predicted) > MAX_ANSWER_CHARS:
        return False
    text = predicted
    for symbol, plain in _SYMBOLS:
        text = text.replace(symbol, plain)
    if text.count("=") == 1:  # `25 * 4 - 3 = 97` names the target at the end
        text, claimed = text.split("=")
        if parse_number(claimed) != target:
            return False
    try:
        tokens = tokenize(text)
        written = [t.text for t in tokens if t.kind == "num"]
        if len(written) > len(numbers) or any("." in w for w in written):
            return False  # more literals than numbers (also bounds the tree), or decimals
        tree = parse(text)
        stack, used = [tree], []
        while stack:  # literals and unary minus, without recursion
            node = stack.pop()
            if isinstance(node, Neg):
                return False
            if isinstance(node, BinOp):
                stack += [node.right, node.left]
            elif isinstance(node, Num):
                used.append(node.value)
        if any(v < 0 or Fraction(v).denominator != 1 for v in used):
            return False
        if Counter(int(v) for v in used) - Counter(numbers):
            return False  # a number not given, or used more often than given
        value, _ = evaluate(tree)
    except (R1kitError, ArithmeticError, RecursionError, ValueError):
        return False
    return value == target
