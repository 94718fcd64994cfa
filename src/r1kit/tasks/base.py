"""The public types every task shares: a checked `Step`, a `Problem`, a `Task`."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from r1kit.errors import R1kitError
from r1kit.numbers import Exact, exact, format_number

BINARY_OPS = ("+", "-", "*", "/")


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


class Task(ABC):
    """A family of checkable problems. Subclasses set `name` and `levels` and implement `make`."""

    name: str = ""
    levels: tuple[int, ...] = ()
    default_levels: dict[int, Any] = {}  # level → a spec dataclass with validate(), as data
    max_attempts_per_problem = 50

    def __init__(self, *, levels: dict[int, Any] | None = None):
        """`levels` replaces the task's level table (same spec type), e.g. for a harder curriculum."""
        self.level_specs = dict(levels or self.default_levels)
        for spec in self.level_specs.values():
            spec.validate()
        if self.level_specs:
            self.levels = tuple(sorted(self.level_specs))

    def generate(self, count: int, *, seed: int, level: int) -> list[Problem]:
        """`count` distinct problems; the same (seed, level) gives identical problems everywhere."""
        self.check_level(level)
        if count < 0:
            raise R1kitError(f"count must be >= 0, got {count}")
        problems: list[Problem] = []
        seen: set[str] = set()
        index = 0
        budget = count * self.max_attempts_per_problem + 100
        while len(problems) < count:
            if index >= budget:
                raise R1kitError(
                    f"{self.name} level {level} has fewer than {count} distinct problems; ask for fewer"
                )
            problem = self.make(problem_seed(seed, level, index), level)
            index += 1
            key = normalize_question(problem.question)
            if key not in seen:
                seen.add(key)
                problems.append(problem)
        return problems

    @abstractmethod
    def make(self, seed: int, level: int) -> Problem:
        """One problem drawn from `random.Random(seed)` at `level`."""

    def instruction(self, problem: Problem) -> str:
        """The problem as a request in words, for chat-style prompts."""
        return problem.question

    def compact_prompt(self, problem: Problem) -> str:
        """The question for character-level models: short, no redundant spaces."""
        from r1kit.render import compact_question

        return compact_question(problem.question)

    def check_level(self, level: int) -> None:
        if level not in self.levels:
            raise R1kitError(
                f"{self.name} has levels {self.levels[0]}..{self.levels[-1]}, got {level!r}"
            )

    def score_answer(self, predicted: str | None, problem_answer: str, metadata: dict[str, Any] | None = None) -> float:
        """1.0 if the extracted answer is right. Numeric by default; tasks override."""
        from r1kit.verify import is_correct

        return float(is_correct(predicted, problem_answer))

    def score(self, completion: str, problem: Problem) -> float:
        from r1kit.verify import extract_answer

        return self.score_answer(extract_answer(completion), problem.answer, problem.metadata)
