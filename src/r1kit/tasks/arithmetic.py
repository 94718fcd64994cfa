"""`arithmetic`: the math compiler as a task. Random expression trees per difficulty level,
with the exact step-by-step evaluation as the reference trace."""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from r1kit.errors import R1kitError
from r1kit.expr import (BinOp, Granularity, Neg, Node, Num, check_granularity, combine, depth, evaluate, negate, number,
                        parse, to_text)
from r1kit.numbers import Exact, exact, format_number
from r1kit.problem import Problem, Step, problem_id
from r1kit.tasks.base import Task


@dataclass(frozen=True)
class Level:
    """A difficulty level as data (documented as a table in the README)."""

    terms: tuple[int, int]  # min, max number of literals
    max_value: int  # literals are drawn from 1..max_value
    ops: str
    max_depth: int = 0  # parenthesis nesting
    negatives: float = 0.0  # chance of a negative literal / unary minus
    decimals: float = 0.0  # chance of a one-place decimal literal
    exact_division: bool = True  # `/` only where the result is an integer

    def validate(self) -> None:
        if not 2 <= self.terms[0] <= self.terms[1] <= 12:
            raise R1kitError(f"terms must satisfy 2 <= min <= max <= 12, got {self.terms}")
        if self.max_value < 2 or not set(self.ops) <= set("+-*/") or not self.ops:
            raise R1kitError("max_value must be >= 2 and ops a non-empty subset of '+-*/'")


LEVELS: dict[int, Level] = {
    1: Level(terms=(2, 2), max_value=50, ops="+-"),
    2: Level(terms=(3, 3), max_value=20, ops="+-*"),
    3: Level(terms=(3, 4), max_value=20, ops="+-*", max_depth=1),
    4: Level(terms=(4, 5), max_value=50, ops="+-*/", max_depth=2, negatives=0.2),
    5: Level(terms=(5, 6), max_value=100, ops="+-*/", max_depth=2, negatives=0.2, decimals=0.15),
    6: Level(terms=(6, 8), max_value=1000, ops="+-*/", max_depth=3, negatives=0.25, decimals=0.2,
             exact_division=False),
}


class ArithmeticTask(Task):
    name = "arithmetic"
    levels = tuple(LEVELS)
    default_levels = LEVELS

    def __init__(self, *, granularity: Granularity | None = None, levels: dict[int, Level] | None = None):
        """`granularity` is how fine the reference trace is (`expr.Granularity`, default "op");
        only the steps change with it, never the question, answer or id."""
        super().__init__(levels=levels)
        try:
            self.granularity = check_granularity(granularity or "op")
        except ValueError as error:
            raise R1kitError(str(error)) from None

    def instruction(self, problem: Problem) -> str:
        return f"Compute {problem.question}."

    def make(self, seed: int, level: int) -> Problem:
        spec, rng = self.level_specs[level], random.Random(seed)
        for _ in range(1000):
            steps: list[Step] = []
            drawn = random_tree(rng, spec, spec.terms[0] + _below(rng, spec.terms[1] - spec.terms[0] + 1),
                                steps, self.granularity)
            if drawn is None:
                continue
            question = to_text(drawn[0])
            if depth(question) <= spec.max_depth:
                return self.problem(question, level, drawn[1], steps)
        raise R1kitError(f"could not draw an expression for level {level}; loosen its settings")

    def problem(self, question: str, level: int, value: Exact, steps: list[Step]) -> Problem:
        return Problem(
            id=problem_id(self.name, level, question),
            task=self.name,
            level=level,
            question=question,
            answer=format_number(value),
            steps=steps,
        )

    def compile(self, expression: str, level: int = 0) -> Problem:
        """A user's own expression → Problem with its exact trace (`r1kit compile`)."""
        tree = parse(expression)
        value, steps = evaluate(tree, granularity=self.granularity)
        return self.problem(to_text(tree), level, value, steps)


# `rng.random()` is one C call; `randint`/`choice` cost several Python frames each, and
# generation speed matters at millions of problems. Both are deterministic for a given seed.
def _below(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def _pick(rng: random.Random, items):
    return items[int(rng.random() * len(items))]


def random_literal(rng: random.Random, spec: Level) -> Num:
    if spec.decimals and rng.random() < spec.decimals:
        value: Exact = exact(Fraction(1 + _below(rng, spec.max_value * 10 - 1), 10))
    else:
        value = 1 + int(rng.random() * spec.max_value)
    if spec.negatives and rng.random() < spec.negatives / 2:
        value = -value
    return Num(value, str(value)) if type(value) is int else number(value)


Drawn = tuple[Node, Exact]  # a subtree and its value, so divisions can pick an exact divisor


def random_tree(rng: random.Random, spec: Level, terms: int, steps: list[Step],
                granularity: Granularity = "op") -> Drawn | None:
    """A random expression with `terms` literals and its value, built in post-order so that
    its trace is written into `steps` on the way (exactly what `evaluate` would write).
    None when a draw hits a forbidden case (no exact divisor): the caller draws again."""
    if terms == 1:
        if not (spec.decimals or spec.negatives):  # the common case, inlined: this runs per literal
            value = 1 + int(rng.random() * spec.max_value)
            return Num(value, str(value)), value
        literal = random_literal(rng, spec)
        return literal, literal.value
    split = 1 + int(rng.random() * (terms - 1))
    op = spec.ops[int(rng.random() * len(spec.ops))]
    left = random_tree(rng, spec, split, steps, granularity)
    if left is None:
        return None
    if op == "/":
        divisor = divisor_for(rng, spec, left[1])
        if divisor is None:
            return None
        drawn: Drawn = (BinOp("/", left[0], divisor), combine("/", left[1], divisor.value, steps))
        if terms > 2:  # the divisor used one literal; attach the rest with another operator
            rest = random_tree(rng, spec, terms - 2, steps, granularity)
            if rest is None:
                return None
            op = _pick(rng, spec.ops.replace("/", "") or "+")
            drawn = (BinOp(op, drawn[0], rest[0]), combine(op, drawn[1], rest[1], steps, granularity))
    else:
        right = random_tree(rng, spec, terms - split, steps, granularity)
        if right is None:
            return None
        drawn = (BinOp(op, left[0], right[0]), combine(op, left[1], right[1], steps, granularity))
    if spec.negatives and rng.random() < spec.negatives / 4:
        drawn = (Neg(drawn[0]), negate(drawn[1], steps))
    return drawn


def divisor_for(rng: random.Random, spec: Level, dividend: Exact) -> Num | None:
    """A non-zero literal divisor; with exact division, one that divides the dividend."""
    if not spec.exact_division:
        sign = -1 if spec.negatives and rng.random() < 0.5 else 1
        return number(sign * (1 + _below(rng, spec.max_value)))
    if type(dividend) is not int or dividend == 0:
        return None
    magnitude = abs(dividend)
    divisors = [d for d in range(2, min(magnitude, spec.max_value) + 1) if magnitude % d == 0]
    return number(_pick(rng, divisors)) if divisors else None
