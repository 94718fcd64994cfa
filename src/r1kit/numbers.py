"""Exact numbers as text: one canonical way to write a `Fraction`, one strict way to read one back.

Reading is bounded (length, digits, no exponents) because the text may come from a model.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_NUMBER_CHARS = 64  # longer "numbers" are rejected, never converted (`9` * 100_000)

_DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(
    rf"""\s*(?:
        (?P<frac>[+-]?\d+\s*/\s*[+-]?\d+)               # 24/2, -7/2
      | (?P<thousands>[+-]?\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?)  # 1,234 or 1,234.5
      | (?P<dec>{_DECIMAL})                              # 12, +12, 12.0, .5
    )\s*""",
    re.VERBOSE,
)


def parse_number(text: str) -> Fraction | None:
    """The exact value of one number written as an integer, decimal, fraction or in thousands form.

    Returns None for anything else, including more than one value, exponents, NaN and huge inputs.
    """
    if len(text) > MAX_NUMBER_CHARS:
        return None
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    if match["frac"]:
        numerator, denominator = (int(part) for part in match["frac"].replace(" ", "").split("/"))
        return None if denominator == 0 else Fraction(numerator, denominator)
    if match["thousands"]:
        return Fraction(match["thousands"].replace(",", ""))
    return Fraction(match["dec"])


Exact = int | Fraction  # an exact value: a plain int whenever it is whole (ints are ~10x faster)


def exact(value: Exact | str) -> Exact:
    """The canonical exact value: `Fraction(6, 2)` → `3`, `"2.5"` → `Fraction(5, 2)`."""
    if type(value) is int:
        return value
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else value


def _is_finite_decimal(value: Fraction) -> bool:
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def format_number(value: Exact, *, parenthesize_fraction: bool = False) -> str:
    """`12`, `-3`, `2.5` (when the decimal is finite and short) or `7/2` (exact otherwise)."""
    if type(value) is int:
        return str(value)
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    if _is_finite_decimal(value) and value.denominator <= 10**6:
        places = 0
        while (value * 10**places).denominator != 1:
            places += 1
        sign = "-" if value < 0 else ""
        scaled = abs(value.numerator) * 10**places // value.denominator
        whole, frac = divmod(scaled, 10**places)
        return f"{sign}{whole}.{frac:0{places}d}"
    text = f"{value.numerator}/{value.denominator}"
    return f"({text})" if parenthesize_fraction else text
