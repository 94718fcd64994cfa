"""Small unrelated skills the tiny base model learns in pre-training, so that later stages can
measure what specialisation costs it (retention): reversing digits, comparing numbers, copying."""

from __future__ import annotations

import random

from r1kit.problem import Problem, problem_id
from r1kit.tasks.base import Task

# level → number of digits (reverse, copy) or the largest number (compare)
DIGITS = {1: 4, 2: 5, 3: 6}


class ReverseTask(Task):
    """`reverse 4821` → `1284`."""

    name = "reverse"
    levels = tuple(DIGITS)

    def make(self, seed: int, level: int) -> Problem:
        rng = random.Random(seed)
        digits = "".join(str(rng.randint(0, 9)) for _ in range(DIGITS[level]))
        return _problem(self.name, level, f"reverse {digits}", digits[::-1])

    def score_answer(self, predicted, problem_answer, metadata=None) -> float:
        return float(predicted is not None and predicted.strip() == problem_answer)


class CopyTask(ReverseTask):
    """`copy 4821` → `4821` (string-exact, so leading zeros count)."""

    name = "copy"

    def make(self, seed: int, level: int) -> Problem:
        rng = random.Random(seed)
        digits = "".join(str(rng.randint(0, 9)) for _ in range(DIGITS[level]))
        return _problem(self.name, level, f"copy {digits}", digits)


class CompareTask(Task):
    """`max 37 81` → `81`: the larger of two numbers."""

    name = "compare"
    levels = tuple(DIGITS)

    def make(self, seed: int, level: int) -> Problem:
        rng = random.Random(seed)
        a, b = rng.sample(range(10 ** DIGITS[level] // 10), 2)
        return _problem(self.name, level, f"max {a} {b}", str(max(a, b)))


def _problem(task: str, level: int, question: str, answer: str) -> Problem:
    return Problem(id=problem_id(task, level, question), task=task, level=level, question=question, answer=answer)


SKILLS = ("reverse", "compare", "copy")
