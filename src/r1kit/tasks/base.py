"""`Task`: a family of checkable problems (its types are in `r1kit.problem`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from r1kit.errors import R1kitError
from r1kit.problem import Problem, compact_question, normalize_question, problem_seed
from r1kit.verify import extract_answer, is_correct


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
        return compact_question(problem.question)

    def check_level(self, level: int) -> None:
        if level not in self.levels:
            raise R1kitError(
                f"{self.name} has levels {self.levels[0]}..{self.levels[-1]}, got {level!r}"
            )

    def score_answer(self, predicted: str | None, problem_answer: str, metadata: dict[str, Any] | None = None) -> float:
        """1.0 if the extracted answer is right. Numeric by default; tasks override."""
        return float(is_correct(predicted, problem_answer))

    def score(self, completion: str, problem: Problem) -> float:
        return self.score_answer(extract_answer(completion), problem.answer, problem.metadata)
