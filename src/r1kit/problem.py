"""The bottom of r1kit: the compiler's checked `Step`, a `Problem`, ids, seeding and the
normal form of a question. Everything else (expr, verify, render, tasks) builds on this."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from r1kit.errors import R1kitError
from r1kit.numbers import Exact, exact, format_number

BINARY_OPS = ("+", "-", "*", "/")
_VALUE = r"\(-?\d+(?:\.\d+)?/\d+\)|-?\d+(?:\.\d+)?(?:/\d+)?"
_STEP_TEXT = re.compile(rf"\s*({_VALUE})\s*([-+*/])\s*({_VALUE})\s*=\s*({_VALUE})\s*")


def apply_op(op: str, left: Exact, right: Exact) -> Exact:
    """Exact binary arithmetic on ints and Fractions; whole results come back as ints."""
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif op == "/":
        if right == 0:
            raise ZeroDivisionError("division by zero")
        if type(left) is int and type(right) is int and left % right == 0:
            return left // right
        result = Fraction(left) / right
    else:
        raise ValueError(f"unknown operator {op!r}")
    return result if type(result) is int else exact(result)


@dataclass(slots=True)  # not frozen: frozen dataclasses build 3x slower, and we build millions
class Step:
    """One checked operation `left op right = result`, with exact values. Make steps with
    `Step.compute`, which does the arithmetic, so that every step re-computes by construction.

    `kind` says why the step exists ("op", "partial" for a partial product, or a task's own
    phase such as "expand"); `state` is optional context shown after it (e.g. the equation
    after a linear-equation step).
    """

    op: str
    left: Exact
    right: Exact
    result: Exact
    kind: str = "op"
    state: str = ""

    @property
    def true(self) -> bool:
        """Whether the step re-computes (always, for steps made by `compute`)."""
        try:
            return apply_op(self.op, self.left, self.right) == self.result
        except ZeroDivisionError:
            return False

    @classmethod
    def compute(cls, op: str, left: Exact, right: Exact, kind: str = "op", state: str = "") -> Step:
        if type(left) is not int or type(right) is not int:
            left, right = exact(left), exact(right)
        return cls(op, left, right, apply_op(op, left, right), kind, state)

    def text(self, spaced: bool = True) -> str:
        """`3 * 4 = 12` (spaced) or `3*4=12` (compact; fractions parenthesized so `/` stays unambiguous)."""
        a, b, r = (format_number(v, parenthesize_fraction=not spaced) for v in (self.left, self.right, self.result))
        return f"{a} {self.op} {b} = {r}" if spaced else f"{a}{self.op}{b}={r}"

    @classmethod
    def parse(cls, text: str) -> Step:
        """The step `text()` wrote, spaced or compact (`3 * 4 = 12`, `(7/2)*2=7`), as written:
        a strict reader of the compiler's own format, not of model output."""
        match = _STEP_TEXT.fullmatch(text)
        if match is None:
            raise R1kitError(f"not a step in the form `3 * 4 = 12`: {text!r}")
        left, right, result = (_exact_text(match[i]) for i in (1, 3, 4))
        return cls(match[2], left, right, result)


def _exact_text(text: str) -> Exact:
    text = text.strip("()")
    return int(text) if text.lstrip("-").isdigit() else exact(text)


@dataclass
class Problem:
    id: str
    task: str
    level: int
    question: str
    answer: str
    steps: list[Step] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def problem_id(task: str, level: int, question: str) -> str:
    """Stable across machines: derived from the content, not from process state."""
    digest = hashlib.sha1(f"{task}|{level}|{question}".encode()).hexdigest()[:12]
    return f"{task}-L{level}-{digest}"


def problem_seed(seed: int, level: int, index: int) -> int:
    """One integer per (seed, level, index), distinct for index < 2**40: `random.Random(int)`
    is the same on every machine and cheaper to seed than a string."""
    return (seed % 2**64) << 48 | (level % 256) << 40 | index


def normalize_question(question: str) -> str:
    """The form used to decide that two questions are the same (train/test dedup)."""
    return "".join(question.split()).lower()


_AROUND_SYMBOLS = re.compile(r"\s*([-+*/()=,])\s*")


def compact_question(question: str) -> str:
    """`12 + 3 * (4 - 1)` → `12+3*(4-1)`; words keep their spaces (`max 37 81`)."""
    return _AROUND_SYMBOLS.sub(r"\1", question.strip())
