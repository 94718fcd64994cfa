"""The task registry: `get(name)`, `names()`, `register(task)`."""

from __future__ import annotations

from collections.abc import Callable

from r1kit.errors import R1kitError
from r1kit.tasks.base import Problem, Step, Task, normalize_question, problem_id

_FACTORIES: dict[str, Callable[[], Task]] = {}


def register(name: str, factory: Callable[[], Task], *, replace: bool = False) -> None:
    """Make a task available by name. `factory` builds a fresh `Task` (a class works)."""
    if name in _FACTORIES and not replace:
        raise R1kitError(f"task {name!r} is already registered; pass replace=True to override")
    _FACTORIES[name] = factory


def names() -> list[str]:
    return sorted(_FACTORIES)


def get(name: str, **options) -> Task:
    if name not in _FACTORIES:
        import difflib

        close = difflib.get_close_matches(name, names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise R1kitError(f"unknown task {name!r}{hint}; known tasks: {', '.join(names())}")
    return _FACTORIES[name](**options)


def _register_builtins() -> None:
    from r1kit.tasks.arithmetic import ArithmeticTask
    from r1kit.tasks.skills import CompareTask, CopyTask, ReverseTask

    register("arithmetic", ArithmeticTask)
    register("reverse", ReverseTask)
    register("compare", CompareTask)
    register("copy", CopyTask)
    try:
        from r1kit.tasks.linear import LinearTask

        register("linear", LinearTask)
    except ImportError:  # pragma: no cover - written in parallel
        pass
    try:
        from r1kit.tasks.countdown import CountdownTask

        register("countdown", CountdownTask)
    except ImportError:  # pragma: no cover
        pass


_register_builtins()

__all__ = ["Problem", "Step", "Task", "get", "names", "normalize_question", "problem_id", "register"]
