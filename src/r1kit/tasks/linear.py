"""`linear`: one-variable linear equations such as `3(x + 2) = 2x + 5`, solved exactly.

Every problem has exactly one solution (an exact `Fraction`, written with `format_number`).
The reference trace works in four phases, recorded in `Step.kind`; the equation after each
phase is the `Step.state` of that phase's last step, so a `think` trace reads

    3 * 2 = 6            expand     3(x + 2) → 3x + 6
    3x + 6 = 2x + 5
    3 - 2 = 1            isolate    x terms to the left, constants to the right
    5 - 6 = -1
    x = -1

| phase     | what happens                                   | example step  |
|-----------|------------------------------------------------|---------------|
| `expand`  | multiply each bracket out, `m(px + q)`         | `3 * 2 = 6`   |
| `collect` | combine like terms on each side                | `6 - 4 = 2`   |
| `isolate` | x terms to the left, constants to the right    | `3 - 2 = 1`   |
| `divide`  | divide by the x coefficient (skipped when 1)   | `12 / 4 = 3`  |

A phase with nothing to do has no steps. Levels (shapes read `left=right`, with `x` an x term
such as `3x`, `c` a constant, `b` a bracket `m(px + q)`):

| level | shapes | x coefficients, multipliers | constants | solution x |
|---|---|---|---|---|
| 1 | `ax + b = c` | 1..9 | ±1..50 | integer 1..20 |
| 2 | x on both sides: `ax + b = cx + d`, `ax = cx + d`, `ax + b = cx` | 1..9 | ±1..20 | integer −10..10 |
| 3 | one bracket: `m(x + q) = c`, `m(x + q) = cx + d`, `c + m(x + q) = dx + e`, `ax + m(x + q) = c`, `m(x + q) + ax = c`, `ax + b = m(x + q)` | ±1..9 (multipliers ±2..9) | ±1..20 | integer −10..10 |
| 4 | two brackets `m(px + q)` with p in 1..4: `m(px + q) = n(rx + s)`, `c + m(px + q) = n(rx + s) + d`, `m(px + q) + ax = c + n(rx + s)`, `ax + m(px + q) = n(rx + s) + c` | ±1..9 (multipliers ±2..9) | ±1..20 | integer or fraction (denominator ≤ 12, about 80% fractions), in −20..20 |

Canonical text: single spaces around binary `+ - =`, the coefficient before x (`3x`, `-x`, `x`),
x terms written before constants inside a bracket. A left side never ends in two constants
after expansion (`… + 6 - 4 = …` would read as the claimed step `6 - 4 = …` to the step checker).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from fractions import Fraction

from r1kit.errors import R1kitError
from r1kit.numbers import format_number
from r1kit.problem import Problem, Step, problem_id
from r1kit.tasks.base import Task

SHAPE_TERMS = "xcb"  # x term, constant, bracket


@dataclass(frozen=True)
class Level:
    """A difficulty level as data (documented as a table in the module docstring)."""

    shapes: tuple[str, ...]  # "left=right" over x (an x term), c (a constant), b (a bracket)
    coef: int = 9  # x coefficients from 1..coef in size; bracket multipliers from 2..coef
    const: int = 20  # constants from 1..const in size, either sign
    negatives: bool = False  # x coefficients and bracket multipliers may be negative
    inner: int = 1  # the x coefficient p inside a bracket m(px + q): 1..inner
    solution: tuple[int, int] = (-10, 10)  # the range of x
    denominator: int = 1  # the largest denominator of x (1: integer solutions)

    def validate(self) -> None:
        if not self.shapes:
            raise R1kitError("a linear level needs at least one shape such as 'xc=c'")
        for shape in self.shapes:
            sides = shape.split("=")
            if len(sides) != 2 or not all(sides) or not set(shape) <= set(SHAPE_TERMS + "="):
                raise R1kitError(f"linear shape {shape!r} must read 'left=right' over the letters x, c, b")
            if not set(sides[0]) & set("xb"):
                raise R1kitError(f"linear shape {shape!r}: the left side needs an x term or a bracket")
            if sides[0].endswith(("cc", "bc")):
                raise R1kitError(
                    f"linear shape {shape!r}: a left side may not end in two constants after expansion "
                    "(the trace would read as a false step); put the constant first, e.g. 'cb'"
                )
            if self.denominator == 1 and "c" not in shape:
                raise R1kitError(f"linear shape {shape!r} needs a constant 'c' for an integer solution")
        if self.coef < 2 or self.const < 1 or self.inner < 1 or self.denominator < 1:
            raise R1kitError("linear level needs coef >= 2, const >= 1, inner >= 1, denominator >= 1")
        if self.solution[0] > self.solution[1]:
            raise R1kitError(f"linear solution range {self.solution} is empty")


LEVELS: dict[int, Level] = {
    1: Level(shapes=("xc=c",), const=50, solution=(1, 20)),
    2: Level(shapes=("xc=xc", "x=xc", "xc=x")),
    3: Level(shapes=("b=c", "b=xc", "cb=xc", "xb=c", "bx=c", "xc=b"), negatives=True),
    4: Level(shapes=("b=b", "cb=bc", "bx=cb", "xb=bc"), negatives=True, inner=4,
             solution=(-20, 20), denominator=12),
}

# ---------------------------------------------------------------- terms

# A term is ("x", k) for kx, ("c", k) for a constant, or ("b", m, p, q) for m(px + q).
Term = tuple


def x_text(k: int) -> str:
    return {1: "x", -1: "-x"}.get(k, f"{k}x")


def term_text(term: Term, first: bool) -> str:
    """One term with its sign: `3x`, `-x`, `-4` first; ` + 3x`, ` - 4` after."""
    kind, k = term[0], term[1]
    if kind == "x":
        body = x_text(abs(k))
    elif kind == "c":
        body = str(abs(k))
    else:
        _, _, p, q = term
        inner = f"{x_text(p)} {'+' if q > 0 else '-'} {abs(q)}"
        body = f"{abs(k) if abs(k) != 1 else ''}({inner})"
    if first:
        return f"-{body}" if k < 0 else body
    return f" {'-' if k < 0 else '+'} {body}"


def side_text(terms: list[Term]) -> str:
    return "".join(term_text(t, i == 0) for i, t in enumerate(terms)) or "0"


def equation_text(left: list[Term], right: list[Term]) -> str:
    return f"{side_text(left)} = {side_text(right)}"


def side_value(terms: list[Term], x: Fraction) -> Fraction:
    total = Fraction(0)
    for term in terms:
        if term[0] == "x":
            total += term[1] * x
        elif term[0] == "c":
            total += term[1]
        else:
            total += term[1] * (term[2] * x + term[3])
    return total


def coefficients(terms: list[Term]) -> tuple[int, int]:
    """(x coefficient, constant) of a side once expanded and collected."""
    xs = cs = 0
    for term in terms:
        if term[0] == "x":
            xs += term[1]
        elif term[0] == "c":
            cs += term[1]
        else:
            xs += term[1] * term[2]
            cs += term[1] * term[3]
    return xs, cs


# ---------------------------------------------------------------- the task


class LinearTask(Task):
    name = "linear"
    levels = tuple(LEVELS)
    default_levels = LEVELS

    def instruction(self, problem: Problem) -> str:
        return f"Solve for x: {problem.question}"

    def make(self, seed: int, level: int) -> Problem:
        self.check_level(level)
        spec, rng = self.level_specs[level], random.Random(seed)
        for _ in range(1000):
            drawn = draw_equation(rng, spec)
            if drawn is not None:
                return self.problem(*drawn, level=level)
        raise R1kitError(f"could not draw a linear equation for level {level}; loosen its settings")

    def problem(self, left: list[Term], right: list[Term], *, level: int) -> Problem:
        question = equation_text(left, right)
        x, steps = solve(left, right)
        return Problem(
            id=problem_id(self.name, level, question),
            task=self.name,
            level=level,
            question=question,
            answer=format_number(x),
            steps=steps,
        )


def draw_term(rng: random.Random, spec: Level, kind: str) -> Term:
    sign = (lambda: rng.choice((1, -1))) if spec.negatives else (lambda: 1)
    if kind == "x":
        return ("x", sign() * rng.randint(1, spec.coef))
    if kind == "c":
        return ("c", rng.choice((1, -1)) * rng.randint(1, spec.const))
    return ("b", sign() * rng.randint(2, spec.coef), rng.randint(1, spec.inner),
            rng.choice((1, -1)) * rng.randint(1, spec.const))


def draw_equation(rng: random.Random, spec: Level) -> tuple[list[Term], list[Term]] | None:
    """A random equation of the level with exactly one solution in range; None to draw again."""
    shape = rng.choice(spec.shapes)
    left_shape, right_shape = shape.split("=")
    left = [draw_term(rng, spec, kind) for kind in left_shape]
    right = [draw_term(rng, spec, kind) for kind in right_shape]
    if spec.denominator == 1:
        # Choose x, then set the last constant so that x solves the equation.
        x = Fraction(rng.randint(*spec.solution))
        on_right = "c" in right_shape
        terms = right if on_right else left
        index = max(i for i, term in enumerate(terms) if term[0] == "c")
        terms[index] = ("c", 0)
        gap = side_value(left, x) - side_value(right, x)
        constant = gap if on_right else -gap
        if constant == 0 or abs(constant) > 10 * spec.const:
            return None
        terms[index] = ("c", int(constant))
    left_x, left_c = coefficients(left)
    right_x, right_c = coefficients(right)
    if left_x == 0 or left_x == right_x:  # x vanishes from the left, or no / infinitely many solutions
        return None
    x = Fraction(right_c - left_c, left_x - right_x)
    if x.denominator > spec.denominator or not spec.solution[0] <= x <= spec.solution[1]:
        return None
    return left, right


# ---------------------------------------------------------------- the reference solution


def solve(left: list[Term], right: list[Term]) -> tuple[Fraction, list[Step]]:
    """The exact solution and its trace: expand, collect, isolate, divide."""
    steps: list[Step] = []

    def close_phase(start: int, state: str) -> None:
        if len(steps) > start:
            steps[-1] = replace(steps[-1], state=state)

    # expand: m(px + q) → (mp)x + mq, in place
    start = len(steps)
    sides = []
    for terms in (left, right):
        expanded: list[Term] = []
        for term in terms:
            if term[0] != "b":
                expanded.append(term)
                continue
            _, m, p, q = term
            if p != 1:
                steps.append(Step.compute("*", m, p, kind="expand"))
            steps.append(Step.compute("*", m, q, kind="expand"))
            expanded += [("x", m * p), ("c", m * q)]
        sides.append(expanded)
    close_phase(start, equation_text(*sides))

    # collect: like terms on each side, left to right, as written (`3x - 2x` → `3 - 2 = 1`)
    start = len(steps)
    collected = []
    for terms in sides:
        totals = []
        for kind in "xc":
            values = [term[1] for term in terms if term[0] == kind]
            total = Fraction(values[0]) if values else Fraction(0)
            for value in values[1:]:
                steps.append(Step.compute("+" if value > 0 else "-", total, abs(value), kind="collect"))
                total = steps[-1].result
            totals.append(total)
        collected.append(totals)
    (left_x, left_c), (right_x, right_c) = collected
    close_phase(start, equation_text(*(canonical(x, c) for x, c in collected)))

    # isolate: x terms to the left, constants to the right
    start = len(steps)
    coefficient, constant = left_x, right_c
    if right_x != 0:
        steps.append(Step.compute("-" if right_x > 0 else "+", left_x, abs(right_x), kind="isolate"))
        coefficient = steps[-1].result
    if left_c != 0:
        if right_c == 0:
            constant = -left_c  # nothing to compute: `3x + 7 = 0` → `3x = -7`
        else:
            steps.append(Step.compute("-" if left_c > 0 else "+", right_c, abs(left_c), kind="isolate"))
            constant = steps[-1].result
    if coefficient == 0:  # draw_equation never lets this through
        raise R1kitError("equation has no unique solution")
    close_phase(start, equation_text(canonical(coefficient, 0), canonical(0, constant)))

    # divide
    x = Fraction(constant) / Fraction(coefficient)  # steps may hold plain ints
    if coefficient != 1:  # with 1, the isolate (or collect) state already reads `x = …`
        steps.append(Step.compute("/", constant, coefficient, kind="divide", state=f"x = {format_number(x)}"))
    return x, steps


def canonical(x_coefficient: Fraction, constant: Fraction) -> list[Term]:
    terms: list[Term] = []
    if x_coefficient:
        terms.append(("x", int(x_coefficient)))
    if constant:
        terms.append(("c", int(constant)))
    return terms
