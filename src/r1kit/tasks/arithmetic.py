"""`arithmetic`: the math compiler as a task. Random expression trees per difficulty level,
with the exact step-by-step evaluation as the reference trace."""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from r1kit.errors import R1kitError
from r1kit.expr import BinOp, Neg, Node, Num, depth, evaluate, number, to_text
from r1kit.numbers import format_number
from r1kit.tasks.base import Problem, Task, problem_id


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
    1: Level(terms=(2, 2), max_value=99, ops="+-"),
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

    def __init__(self, *, fine_steps: bool = False, levels: dict[int, Level] | None = None):
        self.fine_steps = fine_steps
        self.level_specs = dict(levels or LEVELS)
        for spec in self.level_specs.values():
            spec.validate()
        self.levels = tuple(sorted(self.level_specs))

    def instruction(self, problem: Problem) -> str:
        return f"Compute {problem.question}."

    def make(self, seed: str, level: int) -> Problem:
        spec, rng = self.level_specs[level], random.Random(seed)
        for _ in range(1000):
            tree = random_tree(rng, spec, rng.randint(*spec.terms))
            if tree is not None and depth(tree) <= spec.max_depth:
                return self.problem(tree, level)
        raise R1kitError(f"could not draw an expression for level {level}; loosen its settings")

    def problem(self, tree: Node, level: int) -> Problem:
        value, steps = evaluate(tree, fine=self.fine_steps)
        question = to_text(tree)
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
        from r1kit.expr import parse

        return self.problem(parse(expression), level)


def random_literal(rng: random.Random, spec: Level) -> Num:
    if spec.decimals and rng.random() < spec.decimals:
        value = Fraction(rng.randint(1, spec.max_value * 10 - 1), 10)
    else:
        value = Fraction(rng.randint(1, spec.max_value))
    if spec.negatives and rng.random() < spec.negatives / 2:
        value = -value
    return number(value)


def random_tree(rng: random.Random, spec: Level, terms: int) -> Node | None:
    """A random expression with `terms` literals; None when a draw hits a forbidden case."""
    if terms == 1:
        return random_literal(rng, spec)
    split = rng.randint(1, terms - 1)
    op = rng.choice(spec.ops)
    left = random_tree(rng, spec, split)
    if left is None:
        return None
    if op == "/":
        right = divisor_for(rng, spec, left)
        if right is None:
            return None
        node: Node = BinOp("/", left, right)
        if terms > 2:  # keep the literal budget: the divisor used one term, attach the rest
            rest = random_tree(rng, spec, terms - 2) if terms - 2 >= 1 else None
            if rest is None:
                return None
            node = BinOp(rng.choice(spec.ops.replace("/", "") or "+"), node, rest)
    else:
        right = random_tree(rng, spec, terms - split)
        if right is None:
            return None
        node = BinOp(op, left, right)
    if spec.negatives and isinstance(node, BinOp) and rng.random() < spec.negatives / 4:
        node = Neg(node)
    return node


def divisor_for(rng: random.Random, spec: Level, dividend: Node) -> Num | None:
    """A non-zero literal divisor; with exact division, one that divides the dividend."""
    value = evaluate(dividend)[0]
    if not spec.exact_division:
        return number(rng.randint(1, spec.max_value) * rng.choice((1, -1) if spec.negatives else (1,)))
    if value.denominator != 1 or value == 0:
        return None
    magnitude = abs(value.numerator)
    divisors = [d for d in range(2, min(magnitude, spec.max_value) + 1) if magnitude % d == 0]
    if not divisors:
        return None
    return number(rng.choice(divisors))
