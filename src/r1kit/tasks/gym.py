"""`gym:<dataset>`: any reasoning-gym dataset as an r1kit task (`gym:leg_counting`, `gym:chain_sum`).

reasoning-gym (an optional dependency: `pip install 'r1kit[gym]'`) generates the problems and
scores the answers with its own `score_answer`, so rewards and eval agree with its leaderboard.
There are no reference traces (`steps` is empty): such a task serves GRPO rewards, evaluation,
and distillation from a teacher; its SFT completion is the answer alone.

Levels follow the dataset's reasoning-gym curriculum: r1kit level L is curriculum global level
L - 1 (reasoning-gym's inclusive ranges, so level 3 spans everything from the easiest setting up
to its third step), and the task has as many levels as the curriculum's longest attribute.
A dataset without a curriculum has level 1 only: its default config. Keyword options override
config fields on top of the level, e.g. `tasks.get("gym:leg_counting", max_animals=3)`.

Determinism: reasoning-gym draws item i from `Random(seed + i)`, so the dataset seed is derived
by hashing (dataset, seed, level): seeds 0 and 1 give unrelated problems, not shifted ones.

Metadata: the entry's metadata, made JSON-safe without losing types (tuples and dicts with
non-string keys are tagged), so it survives a dataset row's JSON `metadata` column and
`score_answer` gets the entry reasoning-gym produced. Entries whose metadata passes
`MAX_METADATA_CHARS` are refused at generation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from r1kit.errors import R1kitError, suggest
from r1kit.problem import Problem, normalize_question, problem_id
from r1kit.tasks.base import Task

PREFIX = "gym:"
MAX_METADATA_CHARS = 64_000
MAX_ANSWER_CHARS = 2_000  # a longer prediction (beyond 4x the reference) scores 0, unread
_TUPLE, _ITEMS = "__tuple__", "__items__"


def _registry() -> tuple[dict[str, Any], dict[str, Any]]:
    """reasoning-gym's datasets and curricula (name → classes)."""
    try:
        from reasoning_gym.factory import CURRICULA, DATASETS
    except ImportError:
        raise R1kitError("gym:* tasks need reasoning-gym; install it with "
                         "`pip install 'r1kit[gym]'` (or `pip install reasoning-gym`)") from None
    return DATASETS, CURRICULA


def dataset_names() -> list[str]:
    return sorted(_registry()[0])


class GymTask(Task):
    """One reasoning-gym dataset; `config` overrides fields of its config dataclass."""

    max_attempts_per_problem = 10

    def __init__(self, dataset: str, **config: Any):
        datasets, curricula = _registry()
        if dataset not in datasets:
            hint = suggest(dataset, datasets, n=3, label=lambda close: PREFIX + close)
            raise R1kitError(f"unknown reasoning-gym dataset {dataset!r}{hint}; reasoning-gym has "
                             f"{len(datasets)} datasets, listed by r1kit.tasks.gym.dataset_names()")
        super().__init__()
        self.dataset = dataset
        self.name = PREFIX + dataset
        self.dataset_cls, self.config_cls = datasets[dataset]
        self.curriculum_cls = curricula.get(dataset)
        fields = [f.name for f in dataclasses.fields(self.config_cls)]
        for key in config:
            if key not in fields or key in ("seed", "size"):
                raise R1kitError(f"{self.name} has no config option {key!r}{suggest(key, fields)}; options: "
                                 f"{', '.join(f for f in fields if f not in ('seed', 'size'))}")
        self.overrides = config
        self.levels = tuple(range(1, self._level_count() + 1))
        self._scorer = None

    def _level_count(self) -> int:
        if self.curriculum_cls is None:
            return 1
        attributes = self.curriculum_cls().attributes.values()
        return max((len(attribute.levels) for attribute in attributes), default=1)

    def config(self, *, seed: int, level: int, size: int):
        """The reasoning-gym config for `level` (see the module docstring), with the overrides."""
        self.check_level(level)
        if self.curriculum_cls is None:
            config = self.config_cls(seed=seed, size=size)
        else:
            curriculum = self.curriculum_cls()
            curriculum.set_global_level(level - 1)
            config = curriculum.generate_configuration({"seed": seed, "size": size})
        return dataclasses.replace(config, **self.overrides)

    def build(self, *, seed: int, level: int, size: int):
        config = self.config(seed=seed, level=level, size=size)
        try:
            return self.dataset_cls(config=config)
        except Exception as error:  # noqa: BLE001 - reasoning-gym config.validate() asserts
            raise R1kitError(f"{self.name} level {level}: reasoning-gym refuses its config "
                             f"({error or type(error).__name__}); choose another level or option") from None

    def generate(self, count: int, *, seed: int, level: int) -> list[Problem]:
        """`count` distinct problems: items 0, 1, 2, … of the dataset seeded for (seed, level)."""
        self.check_level(level)
        if count < 0:
            raise R1kitError(f"count must be >= 0, got {count}")
        budget = count * self.max_attempts_per_problem + 100
        dataset = self.build(seed=gym_seed(self.dataset, seed, level), level=level, size=budget)
        problems: list[Problem] = []
        seen: set[str] = set()
        for index in range(budget):
            if len(problems) == count:
                return problems
            try:
                entry = dataset[index]
            except IndexError:  # a few datasets run out of instances
                break
            problem = self.problem(entry, level)
            key = normalize_question(problem.question)
            if key not in seen:
                seen.add(key)
                problems.append(problem)
        if len(problems) < count:
            raise R1kitError(f"{self.name} level {level} has fewer than {count} distinct problems; "
                             "ask for fewer or use a higher level")
        return problems

    def make(self, seed: int, level: int) -> Problem:
        return self.problem(self.build(seed=seed % 2**32, level=level, size=1)[0], level)

    def problem(self, entry: dict[str, Any], level: int) -> Problem:
        metadata = to_json_safe(entry.get("metadata") or {})
        size = len(json.dumps(metadata))
        if size > MAX_METADATA_CHARS:
            raise R1kitError(f"{self.name} level {level} made an entry with {size:,} characters of metadata "
                             f"(limit {MAX_METADATA_CHARS:,}); choose a lower level")
        question = str(entry["question"])
        answer = "" if entry.get("answer") is None else str(entry["answer"])
        return Problem(id=problem_id(self.name, level, question), task=self.name, level=level,
                       question=question, answer=answer, metadata=metadata)

    def score_answer(self, predicted: str | None, problem_answer: str,
                     metadata: dict[str, Any] | str | None = None) -> float:
        """reasoning-gym's own score (partial credit included) for the entry rebuilt from the
        answer and metadata. Untrusted text it cannot read scores 0.0."""
        if predicted is None or len(predicted) > max(MAX_ANSWER_CHARS, 4 * len(problem_answer)):
            return 0.0
        if isinstance(metadata, str):
            metadata = json.loads(metadata) if metadata else {}
        entry = {"answer": problem_answer, "metadata": from_json_safe(metadata or {})}
        if self._scorer is None:  # as reasoning-gym's get_score_answer_fn, with our overrides
            config = dataclasses.replace(self.config_cls(), **self.overrides)
            self._scorer = self.dataset_cls(config=config).score_answer
        try:
            return float(self._scorer(predicted, entry))
        except Exception:  # noqa: BLE001 - a scorer failing on model text is a wrong answer
            return 0.0


def gym_seed(dataset: str, seed: int, level: int) -> int:
    """A 31-bit dataset seed per (dataset, seed, level), the same on every machine."""
    digest = hashlib.sha256(f"gym|{dataset}|{seed}|{level}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def to_json_safe(value: Any) -> Any:
    """Lists, str-keyed dicts and scalars as JSON has them; tuples and other dicts tagged."""
    if isinstance(value, tuple):
        return {_TUPLE: [to_json_safe(v) for v in value]}
    if isinstance(value, list):
        return [to_json_safe(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not {_TUPLE, _ITEMS} & set(value):
            return {k: to_json_safe(v) for k, v in value.items()}
        return {_ITEMS: [[to_json_safe(k), to_json_safe(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # a numpy scalar
        return to_json_safe(value.item())
    return str(value)  # anything else (a set, a numpy scalar) as text rather than a crash


def from_json_safe(value: Any) -> Any:
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(from_json_safe(v) for v in value[_TUPLE])
        if set(value) == {_ITEMS}:
            return {_hashable(from_json_safe(k)): from_json_safe(v) for k, v in value[_ITEMS]}
        return {k: from_json_safe(v) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
