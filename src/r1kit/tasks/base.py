"""`Task`: a family of checkable problems (its types are in `r1kit.problem`)."""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from r1kit.errors import R1kitError, suggest
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
            raise R1kitError(f"{self.name} has levels {self.level_names()}, got {level!r}")

    def level_names(self) -> str:
        """`1..6`, or `1..6, 9` where the table has gaps (a recipe's own levels)."""
        if not self.levels:
            return "none"
        runs: list[list[int]] = []
        for level in self.levels:
            if runs and level == runs[-1][-1] + 1:
                runs[-1].append(level)
            else:
                runs.append([level])
        if len(runs) == 1:
            return f"{runs[0][0]}..{runs[0][-1]}"
        return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)

    # ------------------------------------------------------------ levels by their parameters

    def define_levels(self, definitions: Mapping[int, Mapping[str, Any]]) -> dict[int, Any]:
        """Level specs from parameters, e.g. `{5: {"like": 3, "terms": [5, 5]}}`, in order: `like: N`
        starts from level N (this task's, or one defined before it), the other keys replace fields
        of the task's level dataclass. A number the task already has is redefined."""
        level_type = self.level_type()
        table, defined = dict(self.level_specs), {}
        for number, params in definitions.items():
            spec = self._define_level(level_type, table, number, params)
            table[number] = defined[number] = spec
        return defined

    def with_levels(self, definitions: Mapping[int, Mapping[str, Any]]) -> Task:
        """A copy of this task whose level table has `definitions` added (`define_levels`); the
        registry's shared instance is never changed."""
        if not definitions:
            return self
        configured = copy.copy(self)
        configured.level_specs = {**self.level_specs, **self.define_levels(definitions)}
        configured.levels = tuple(sorted(configured.level_specs))
        return configured

    def level_params(self, level: int) -> dict[str, Any]:
        """A level's parameters as plain data (what `define_levels` reads back unchanged)."""
        self.check_level(level)
        return dataclasses.asdict(self.level_specs[level])

    def level_type(self) -> type:
        """The dataclass of this task's levels; a task whose levels are not data has none."""
        specs = list(self.default_levels.values())
        if not specs or not dataclasses.is_dataclass(specs[0]):
            raise R1kitError(f"task {self.name!r} has no level parameters to define levels by "
                             "(a task whose levels are dataclasses has, e.g. arithmetic, countdown, linear)")
        return type(specs[0])

    def _define_level(self, level_type: type, table: dict[int, Any], number: int, params: Mapping[str, Any]):
        from pydantic import TypeAdapter, ValidationError

        where = f"levels.{number}"
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            # 0 is free for a warm-up level below a task's first (an R1-Zero curriculum's start)
            raise R1kitError(f"{where}: a level is a whole number from 0 up, got {number!r}")
        if not isinstance(params, Mapping):
            raise R1kitError(f"{where}: give the level's parameters as a mapping, e.g. {{like: 3, ...}}")
        fields = [f.name for f in dataclasses.fields(level_type)]
        for key in params:
            if key != "like" and key not in fields:
                raise R1kitError(f"{where}: unknown key {key!r}{suggest(key, [*fields, 'like'])}; "
                                 f"{self.name} levels have: like, {', '.join(fields)}")
        base: dict[str, Any] = {}
        if "like" in params:
            like = params["like"]
            if like not in table:
                raise R1kitError(f"{where}: like: {like!r} is not a level of {self.name} (levels "
                                 f"{', '.join(map(str, sorted(table)))}); define that level before this one")
            base = dataclasses.asdict(table[like])
        merged = {**base, **{k: v for k, v in params.items() if k != "like"}}
        try:
            spec = TypeAdapter(level_type).validate_python(merged)
        except ValidationError as error:
            missing = [str(e["loc"][0]) for e in error.errors() if e["type"] == "missing"]
            if missing:
                raise R1kitError(f"{where}: needs {', '.join(missing)} (or like: N, to start from level N)") from None
            first = error.errors()[0]
            raise R1kitError(f"{where}.{first['loc'][0]}: {first['msg'].lower()}, got {first.get('input')!r}") from None
        try:
            spec.validate()
        except R1kitError as error:
            raise R1kitError(f"{where}: {error}") from None
        return spec

    def score_answer(self, predicted: str | None, problem_answer: str, metadata: dict[str, Any] | None = None) -> float:
        """1.0 if the extracted answer is right. Numeric by default; tasks override."""
        return float(is_correct(predicted, problem_answer))

    def score(self, completion: str, problem: Problem) -> float:
        return self.score_answer(extract_answer(completion), problem.answer, problem.metadata)
