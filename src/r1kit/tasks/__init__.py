"""The task registry: `get(name)`, `names()`, `register(task)`."""

from __future__ import annotations

from collections.abc import Callable

from r1kit.errors import R1kitError, suggest
from r1kit.problem import Problem, Step, normalize_question, problem_id
from r1kit.tasks.arithmetic import ArithmeticTask
from r1kit.tasks.base import Task
from r1kit.tasks.countdown import CountdownTask
from r1kit.tasks.gym import GymTask
from r1kit.tasks.jsonl import JsonlTask
from r1kit.tasks.linear import LinearTask
from r1kit.tasks.skills import CompareTask, CopyTask, ReverseTask

_FACTORIES: dict[str, Callable[[], Task]] = {
    task.name: task for task in (ArithmeticTask, LinearTask, CountdownTask, ReverseTask, CompareTask, CopyTask)
}
# Rewards, scoring and rendering ask for a task once per completion or row: one shared default
# instance per name instead of rebuilding (and revalidating) it every time.
_DEFAULTS: dict[str, Task] = {}


def register(name: str, factory: Callable[[], Task], *, replace: bool = False) -> None:
    """Make a task available by name. `factory` builds a fresh `Task` (a class works)."""
    if name in _FACTORIES and not replace:
        raise R1kitError(f"task {name!r} is already registered; pass replace=True to override")
    _FACTORIES[name] = factory
    _DEFAULTS.pop(name, None)


def names() -> list[str]:
    return sorted(_FACTORIES)


def get(name: str | Task, **options) -> Task:
    """A registered task, or an external one: `gym:<reasoning-gym dataset>`, `jsonl:<path>`. A task
    object (a recipe's, configured with its own levels) is returned as it is."""
    if isinstance(name, Task):
        if options:
            raise R1kitError(f"task {name.name!r} is already built; options {sorted(options)} cannot apply")
        return name
    factory = _FACTORIES.get(name) or _external(name)
    if factory is None:
        raise R1kitError(f"unknown task {name!r}{suggest(name, names())}; known tasks: {', '.join(names())}, "
                         "gym:<reasoning-gym dataset>, jsonl:<path>")
    if options:
        return factory(**options)
    if name not in _DEFAULTS:
        _DEFAULTS[name] = factory()
    return _DEFAULTS[name]


def _external(name: str) -> Callable[..., Task] | None:
    """`gym:leg_counting` → a reasoning-gym dataset; `jsonl:data/mine.jsonl` → a file of problems."""
    prefix, _, rest = name.partition(":")
    if prefix == "gym" and rest:
        return lambda **options: GymTask(rest, **options)  # an unknown dataset fails there
    if prefix == "jsonl" and rest:
        return lambda **options: JsonlTask(rest, **options)
    return None


__all__ = ["Problem", "Step", "Task", "get", "names", "normalize_question", "problem_id", "register"]
