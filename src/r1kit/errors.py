"""The one exception family a user can cause, and the "did you mean" hint its messages carry."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


class R1kitError(Exception):
    """A problem with the user's input or setup, with a message that names the fix."""


def suggest(word: object, options: Iterable, *, n: int = 1, label: Callable[[str], str] = repr) -> str:
    """` (did you mean 'x'?)` naming the options closest to a mistyped `word`, or ``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=n)
    return f" (did you mean {', '.join(map(label, close))}?)" if close else ""
