"""The one judge: answer extraction, exact equivalence and the step checker.

Model output is untrusted text: it is only ever matched with linear-time regular expressions
and read with `parse_number`, never evaluated; every scan is bounded in length and count.
An answer to a numeric gold is a value, read exactly; only a symbolic gold's answer reaches
math-verify (sympy), after `latex_too_costly`, under a deadline. The rules: docs/verifiers.md.
"""

from __future__ import annotations

import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from itertools import islice
from os.path import commonprefix

from r1kit.numbers import MAX_NUMBER_CHARS, Exact, exact, parse_number
from r1kit.problem import Step
from r1kit.render import VERBAL_PHRASES

MAX_ANSWER_CHARS = 200  # an answer slot longer than this is wrong, not parsed
MAX_SCAN_CHARS = 200_000  # the step checker reads at most this much of a completion
MAX_STEPS = 2_000
MAX_FLEXIBLE_CHARS = 10_000  # `extract_flexible` reads the tail of a completion, this long
MATH_VERIFY_TIMEOUT_S = 2.0  # CPU seconds, a backstop in every thread: latex_too_costly keeps answers far below it

# ---------------------------------------------------------------- answer extraction

_BOXED = "\\boxed"
# The slot must start like a value (digit, sign, bracket, LaTeX, bold), so "no answer here" is none.
# Possessive quantifiers: `\s*[ \t]*` could split a run of blanks n ways, quadratic on "answer" + spaces.
_MARKER = re.compile(
    r"(?i)\banswer\b(?:\s+is)?+\s*+[:=\uff1a]?[ \t]*+([-+\d.(\\$*\u2212\u2012\u2013\uff0b\uff0d](?:(?!answer\b)[^\n|<])*)"
)
_SENTENCE_END = re.compile(r"\.\s")
_DIGIT = re.compile(r"\d")


def extract_answer(text: str | None) -> str | None:
    """The last `<answer>…</answer>` block, else the last `\\boxed{…}` (with any box beside it on
    its line), else the last marker (`answer 17`, `Answer: 17`, `The answer is 17.`). None when
    there is no answer."""
    if not text:
        return None
    end = text.rfind("</answer>")
    if end != -1:
        start = text.rfind("<answer>", 0, end)
        if start != -1:
            return text[start + len("<answer>"):end].strip()
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    last = None
    for last in _MARKER.finditer(text):
        pass
    if last is None:
        return None
    return _marker_slot(last.group(1))


def _last_boxed(text: str) -> str | None:
    """The last box's content; with another box before it on its line, both boxes (two values)."""
    end = len(text)
    while (start := text.rfind(_BOXED, 0, end)) != -1 and (box := _box(text, start)) is None:
        end = start
    if start == -1 or box[1] == -1:
        return None
    line_start = text.rfind("\n", 0, start) + 1
    other = text.rfind(_BOXED, line_start, start)
    if other != -1 and (before := _box(text, other)) is not None and -1 < before[1] < start:
        return text[other:box[1] + 1]
    return text[box[0] + 1:box[1]].strip()


def _box(text: str, start: int) -> tuple[int, int] | None:
    """Where the braces of the `\\boxed` at `start` open and close (-1: unclosed, read no further
    than a long answer); None when no brace follows (`\\boxed {21}` has one)."""
    brace = start + len(_BOXED)
    while text[brace:brace + 1] in (" ", "\t"):
        brace += 1
    if not text.startswith("{", brace):
        return None
    return brace, _group_end(text, brace, limit=brace + MAX_ANSWER_CHARS * 5)


def _marker_slot(slot: str) -> str:
    """A sentence ends the answer (`The answer is 17. It was easy.`), unless a later sentence on
    the line states a number too (`The answer is 17. No wait, 18.`): then the slot holds both."""
    first, *rest = _SENTENCE_END.split(slot.strip(), maxsplit=1)
    return _strip_edges(slot if first and rest and _DIGIT.search(rest[0]) else first)


def _strip_edges(slot: str) -> str:
    """A slot without a sentence's final period and its `**…**` or `$…$` wrapper."""
    slot = slot.strip().rstrip(".").strip()
    for wrapper in ("**", "$"):
        if len(slot) > 2 * len(wrapper) and slot.startswith(wrapper) and slot.endswith(wrapper):
            slot = slot[len(wrapper):-len(wrapper)].strip()
    return slot


# ---------------------------------------------------------------- flexible extraction

# A number as prose writes it: `-7`, `2.5`, `.5`, `3/4`, `1,234`; the `-` of `5-3` is not a sign.
_BARE_LINE = re.compile(r"[^A-Za-z\n]{1,40}")  # one short line of numbers and symbols
_FLEX_NUMBER = re.compile(
    r"(?:(?<![\w.)\]}])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?(?:/\d+)?|\.\d+)"
)


def extract_flexible(text: str | None) -> str | None:
    """The final number the text commits to, as lm-evaluation-harness's flexible GSM8K extraction:
    the last number of the answer slot when it holds one, else the last number of the text
    (`So the answer is 38 + 45 = 83.` → `83`). Reads only the text's tail; None without a number."""
    if not text:
        return None
    tail = text[-MAX_FLEXIBLE_CHARS:]
    for region in (extract_answer(tail), tail):
        number = _last_number(normalize_unicode(region)) if region else None
        if number is not None:
            return number
    return None


def extract_bare(text: str | None) -> str | None:
    """The strict reading of a completion asked for the final answer alone (the `short` style):
    one short line without words, the answer alone (`8`, ` -1.5.`) or after the last `=`
    (`3 + 5 = 8` → `8`). None for anything else: words, two lines, two numbers, no number."""
    body = (text or "").strip()
    if not _BARE_LINE.fullmatch(body):
        return None
    body = normalize_unicode(body.rpartition("=")[2]).strip().removesuffix(".").strip()
    return body if _FLEX_NUMBER.fullmatch(body) else None


def _last_number(text: str) -> str | None:
    last = None
    for last in _FLEX_NUMBER.finditer(text):
        pass
    return None if last is None or len(last[0]) > MAX_NUMBER_CHARS else last[0]


# ---------------------------------------------------------------- normalisation

_MINUS = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2010\u2011\ufe63\uff0d"), "-")  # minus sign, dashes
_SLASHES = "\u2044\u2215"  # fraction and division slash
_KEEP_FORMS = ("<super>", "<sub>", "<fraction>")  # NFKC reads `10²` as 102 and `2½` as 21⁄2


def normalize_unicode(text: str) -> str:
    """Unicode minus and dashes as `-`, fullwidth digits and signs (`１２`, `＋`) as ASCII, odd
    spaces (NBSP, thin) as a space, zero-width marks dropped: NFKC, except superscripts and fractions."""
    if text.isascii():
        return text
    out = []
    for char in text.translate(_MINUS):
        if char.isspace():
            out.append(" ")
        elif char in _SLASHES:
            out.append("/")
        elif unicodedata.category(char) != "Cf":  # Cf: zero-width space, BOM, direction marks
            keep = unicodedata.decomposition(char).startswith(_KEEP_FORMS)
            out.append(char if keep else unicodedata.normalize("NFKC", char))
    return unicodedata.normalize("NFC", "".join(out))


_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))
_COMMAND = re.compile(r"\\(?:boxed|fbox|textbf|textrm|text|mathrm|mathbf|mathit)\s*(?=\{)|\\(?:display|text)style\b\s*")


def unwrap(answer: str) -> str:
    """The answer inside its wrappers: `$…$`, `\\(…\\)`, `\\[…\\]`, `**…**`, `{…}`, `\\boxed{…}`,
    `\\text{…}`, so a wrapped number is judged exactly, like a bare one."""
    for _ in range(8):  # wrappers nest a few deep, not more
        answer = answer.strip()
        inner = _strip_wrapper(answer)
        if inner is None:
            break
        answer = inner
    return answer


def _strip_wrapper(text: str) -> str | None:
    for left, right in _WRAPPERS:
        inner = text[len(left):-len(right)]
        if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right) and left not in inner:
            return inner
    command = _COMMAND.match(text)
    start = command.end() if command else 0
    if text.startswith("{", start) and _group_end(text, start) == len(text) - 1:
        return text[start + 1:-1]
    return text[start:] if command and "style" in command[0] else None


def _group_end(text: str, start: int, pair: str = "{}", limit: int | None = None) -> int:
    """The index of the bracket closing the one at `start` (escaped ones skipped), or -1."""
    depth, i, limit = 0, start, len(text) if limit is None else min(limit, len(text))
    while i < limit:
        if text[i] == "\\":
            i += 1
        elif text[i] == pair[0]:
            depth += 1
        elif text[i] == pair[1]:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


_TEXT_EDGES = " .,;:!?\"'`“”‘’«»()[]*_"


def normalize_text(text: str) -> str:
    """A text answer as compared: unwrapped, casefolded, blanks collapsed, quotes and punctuation
    around it stripped (`"Paris."` = `paris` = `\\text{Paris}`)."""
    text = unwrap(normalize_unicode(text))
    return " ".join(text.casefold().split()).strip(_TEXT_EDGES)


# ---------------------------------------------------------------- equivalence

_LATEX_HINT = re.compile(r"[\\{}^$]")
_LETTER = re.compile(r"[^\W\d_]")


def answer_kind(gold: str) -> str:
    """How `is_correct` reads a gold answer: `number` (one value, `read_value`), `latex` (a symbolic
    answer for math-verify: LaTeX, or math without letters like `(1, 2)`) or `text`
    (`normalize_text` equality: `Paris` is never P·a·r·i·s)."""
    return _kind(unwrap(normalize_unicode(gold)))


def _kind(gold: str) -> str:
    if read_value(gold) is not None:
        return "number"
    return "latex" if _LATEX_HINT.search(gold) or not _LETTER.search(gold) else "text"


def is_correct(predicted: str | None, gold: str) -> bool:
    """Whether `predicted` is the gold answer. A numeric gold (`answer_kind`) wants one value,
    read exactly (`read_value`): `12` = `12.0` = `+12` = `24/2` = `x = 12` = `\\frac{24}{2}`,
    `1/2` = `0.5`, bare or wrapped; never an expression to evaluate (`45 + 17`), never two values
    (`21 or 22`). A text gold is matched as text; a symbolic gold by math-verify, decimals exact,
    unless `latex_too_costly`."""
    if predicted is None or len(predicted) > MAX_ANSWER_CHARS:
        return False
    value, expected = parse_number(predicted), parse_number(gold)
    if value is not None and expected is not None:  # the common case, with nothing to normalise
        return value == expected
    gold = unwrap(normalize_unicode(gold))
    kind = _kind(gold)
    if kind == "text":  # not through _strip_edges: `St. Louis` is one answer, not a sentence
        return normalize_text(predicted) == normalize_text(gold) != ""
    predicted = _strip_edges(normalize_unicode(predicted))
    if kind == "number":
        return read_value(predicted) == read_value(gold)
    return _one_value(predicted) and _math_verify(predicted, gold)


# LaTeX spacing: `\,` `\:` `\;` `\!` `\ ` `~` `\quad` …; between digit groups, a thousands separator.
_SPACE = r"\\[,:;! ]|~|\\(?:q?quad|enspace|(?:neg)?(?:thin|med|thick)space)(?![a-zA-Z])"
_SPACES = re.compile(_SPACE)
_GROUPED = re.compile(rf"(?<=\d)(?:{_SPACE}|\{{,\}})(?=\d{{3}}(?!\d))")  # 10\!000, 1{,}234
_ASSIGNED = re.compile(r"[a-zA-Z]\s*=\s*")  # `x = 21`
_PERCENT = re.compile(r"\s*\\?%$")
_FRAC = re.compile(r"([+-]?)\s*\\[dt]?frac\s*(?:\{([^{}]*)\}|(\d))\s*(?:\{([^{}]*)\}|(\d))")


def read_value(text: str) -> Fraction | None:
    """The exact value of an answer that is one number, however it is written: `21`, `-2.5`,
    `5/2`, `1,234`, `x = 21`, `50\\%`, `\\frac{5}{2}`, `-\\dfrac52`, `1{,}234`, `10\\!000`, inside
    `$…$`, `\\(…\\)`, `\\boxed{…}`, `\\text{…}`, `\\mathrm{…}`, after `\\displaystyle`, spaced by
    `\\,` `\\;` `\\!` `~`. None for anything else: an expression (`45 + 17`, `\\frac{45+17}{1}`),
    two values (`21 \\lor 22`), a number among words."""
    text = normalize_unicode(text)
    if len(text) > MAX_ANSWER_CHARS:
        return None
    text = _SPACES.sub(" ", _GROUPED.sub(",", text))
    text = unwrap(text)
    if assigned := _ASSIGNED.match(text):
        text = unwrap(text[assigned.end():])
    text = _PERCENT.sub("", text)
    value = parse_number(text)
    if value is None and (frac := _FRAC.fullmatch(text)):
        top, bottom = (parse_number(unwrap(frac[i] or frac[i + 1])) for i in (2, 4))
        if top is not None and bottom:
            value = top / bottom * (-1 if frac[1] == "-" else 1)
    return value


_ALTERNATIVES = re.compile(r"(?i)\bor\b|\\lor\b|\\vee\b|;|\n|\.\s")


def _one_value(slot: str) -> bool:
    """Whether a slot commits to one symbolic answer: no `or`, `\\lor`, list, retraction or second box."""
    return not _ALTERNATIVES.search(slot) and slot.count(_BOXED) <= 1 and slot.count("$") <= 2


_DECIMAL = re.compile(r"(?<![\d.])(\d*)\.(\d+)(?![\d.])")


def _exact_decimals(latex: str) -> str:
    """`2.5` → `{\\frac{25}{10}}`, `.5` too: math-verify rounds floats to 6 places (`0.3333333` = 1/3)."""
    return _DECIMAL.sub(lambda m: f"{{\\frac{{{int(m[1] + m[2])}}}{{{10 ** len(m[2])}}}}}", latex)


# ---------------------------------------------------------------- the cost of LaTeX

MAX_EXPONENT = 1_000  # a larger literal exponent is refused
MAX_DEGREE = 10**5  # powers of powers multiply: (2^{999})^{999} = 2^998001 is refused
# With letters sympy's simplify expands and combines: (x+y+z)^{50}, (a+b+c+d)^{12}(a+b+c+d)^{12},
# six fractions of twelve letters or nested trig functions take seconds, so symbolic answers stay small.
MAX_SYMBOLIC_DEGREE = 12
MAX_LETTERS = 4  # distinct letters (symbols)
MAX_FUNCTIONS = 3  # \sin(\cos(\tan(\sin(\cos(\tan(\sin(\cos(1)))))))) does not finish
_COSTLY = re.compile(
    r"(?<!\\)!"  # a factorial: \boxed{(10!)!} (`\!` is a LaTeX space)
    r"|\\(?:[dt]?binom|choose|sum|prod|int|iint|iiint|oint|lim|Gamma)(?![a-zA-Z])"
)
_FUNCTION = re.compile(r"\\(?:(?:arc)?(?:sin|cos|tan|cot|sec|csc)h?|log|ln|lg|exp)(?![a-zA-Z])")
_COMMAND_NAME = re.compile(r"\\[a-zA-Z]+")
_POWER = re.compile(r"\^|\*\*")
_EXPONENT_TOKEN = re.compile(r"\s*(?:\\[a-zA-Z]+|\d+|.)")
_LETTER_ATOM = re.compile(r"[^\W\d_]")
_ANY_ATOM = re.compile(r"[^\W\d_]|\d+")


def latex_too_costly(text: str) -> bool:
    """Whether sympy could take long on `text`: over-long, factorials, binomials, sums, products,
    integrals, limits, towers (`10^{10^{10}}`), big powers, or a symbolic expression that is not
    small (over 4 letters, or a degree over 12 counted over the whole expression: a product adds
    its factors' degrees). Checked in time linear in `text`, before math-verify runs."""
    if len(text) > MAX_ANSWER_CHARS or _COSTLY.search(text):
        return True
    if len(_FUNCTION.findall(text)) > MAX_FUNCTIONS:
        return True
    plain = _COMMAND_NAME.sub(" ", text)
    size, degree = _degree(plain, _ANY_ATOM), _degree(plain, _LETTER_ATOM)
    if size is None or degree is None or size > MAX_DEGREE:
        return True
    return len(set(_LETTER.findall(plain))) > MAX_LETTERS or degree > MAX_SYMBOLIC_DEGREE


def _degree(text: str, atom: re.Pattern[str]) -> int | None:
    """The degree of `text` as a polynomial in its atoms: a sum takes its largest term, a product
    adds its factors' degrees, a power multiplies (`(x+y)^{2}(x+y)^{3}` is 5, `x^3+y^4` is 4).
    None for a tower (a power in an exponent) or an exponent over MAX_EXPONENT."""
    frames = [[0, 0, 0]]  # per open bracket: the largest term so far, the term being read, its last factor
    i = 0
    while i < len(text):
        frame, char = frames[-1], text[i]
        if power := _POWER.match(text, i):
            exponent, i = _exponent(text, power.end())
            value = _exponent_value(exponent)
            if value is None:
                return None
            frame[1] += frame[2] * (value - 1)
            frame[2] *= value
            continue
        if found := atom.match(text, i):
            frame[1] += 1
            frame[2] = 1
            i = found.end()
            continue
        if char in "({[":
            frames.append([0, 0, 0])
        elif char in ")}]" and len(frames) > 1:
            inner = max(frames.pop()[:2])
            frames[-1][1] += inner
            frames[-1][2] = inner
        elif char in "+-=,":
            frame[0], frame[1], frame[2] = max(frame[0], frame[1]), 0, 0
        elif not char.isspace():
            frame[2] = 0
        i += 1
    while len(frames) > 1:  # unclosed brackets close at the end
        inner = max(frames.pop()[:2])
        frames[-1][1] += inner
    return max(frames[0][:2])


def _exponent(text: str, start: int) -> tuple[str, int]:
    """The argument of the power ending at `start` (a `{…}` or `(…)` group, else one token) and
    where it ends."""
    while start < len(text) and text[start].isspace():
        start += 1
    if text[start:start + 1] in ("{", "("):
        end = _group_end(text, start, "{}" if text[start] == "{" else "()")
        end = len(text) - 1 if end == -1 else end
        return text[start + 1:end], end + 1
    token = _EXPONENT_TOKEN.match(text, start)
    return (token[0], token.end()) if token else ("", start)


def _exponent_value(exponent: str) -> int | None:
    """The product of the exponent's integer literals (`\\frac{1}{2}` counts 2, `x` counts 1)."""
    if _POWER.search(exponent):
        return None
    value = 1
    for literal in re.findall(r"\d+", exponent):
        if len(literal) > 4 or int(literal) > MAX_EXPONENT:
            return None
        value *= max(1, int(literal))
    return value if value <= MAX_DEGREE else None


class _OutOfTime(BaseException):
    """Raised inside sympy at the deadline; not an Exception, so no `except Exception` on its way
    out swallows it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Stop the Python code run inside after `seconds` of this thread's CPU time (not wall time,
    so a busy machine does not change a verdict), in any thread: math-verify's own timeout is
    signal.alarm, main thread only. A trace function checks at each call (sympy is Python)."""
    end = time.thread_time() + seconds

    def check(frame, event, arg):
        if time.thread_time() > end:
            raise _OutOfTime

    previous = sys.gettrace()
    sys.settrace(check)
    try:
        yield
    finally:
        sys.settrace(previous)


@cache
def _math_verify_api() -> tuple[Callable, Callable]:
    """math-verify's `parse` and `verify`, warmed up: the first import and parse take seconds,
    which the deadline must not count against an answer."""
    from math_verify import parse, verify

    verify(parse("$\\frac{\\sqrt{2}}{2} x^{2}$"), parse("$\\sqrt{2} x^{2} / 2$"), timeout_seconds=None)
    return parse, verify


def _math_verify(predicted: str, gold: str) -> bool:
    if latex_too_costly(predicted):
        return False
    parse, verify = _math_verify_api()

    def wrap(text: str) -> str:  # math-verify reads LaTeX in $…$
        text = _exact_decimals(text)
        return text if "$" in text else f"${text}$"

    try:
        with _deadline(MATH_VERIFY_TIMEOUT_S):
            gold_parsed = parse(wrap(gold), parsing_timeout=None)
            pred_parsed = parse(wrap(predicted), parsing_timeout=None)
            return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except (Exception, _OutOfTime):  # a parser failure or a timeout on untrusted text is a wrong answer
        return False


# ---------------------------------------------------------------- step checker

# A number in a step: `-7`, `2.5`, `7/2`, `(7/2)`, `(-2)`, `2,117`.
_NUM = (r"\(-?\d{1,30}(?:\.\d{1,30})?(?:/\d{1,30})?\)|-?\d{1,3}(?:,\d{3}){1,10}(?!\d)(?:\.\d{1,30})?"
        r"|-?\d{1,30}(?:\.\d{1,30})?(?:/\d{1,30})?")
# A claim is a whole statement, not the end or the start of a longer expression (`6 - 11 * 6 = 6`
# claims no `11 * 6 = 6`): no operand and operator before it or after it, and no line break inside.
_NOT_AFTER_OP = r"(?<![\w.)/])" + "".join(  # lookbehinds are fixed-width: one per spacing
    rf"(?<![\w)]{before}[-+*/^]{after})" for before in ("", "[ \t]") for after in ("", "[ \t]"))
_NOT_BEFORE_OP = r"(?![\d/])(?![ \t]*[-+*/^][ \t]*[\w(.])"
_SYMBOLIC = re.compile(  # `6 - 4 = 2x` is not the step `6 - 4 = 2`
    rf"{_NOT_AFTER_OP}(?P<a>{_NUM})[ \t]*(?P<op>[-+*/])[ \t]*(?P<b>{_NUM})[ \t]*=[ \t]*(?P<r>{_NUM}){_NOT_BEFORE_OP}(?![\w(])"
)
_REVERSED = re.compile(  # `66 = 11 * 6`
    rf"{_NOT_AFTER_OP}(?P<r>{_NUM})[ \t]*=[ \t]*(?P<a>{_NUM})[ \t]*(?P<op>[-+*/])[ \t]*(?P<b>{_NUM}){_NOT_BEFORE_OP}(?![\w(])(?![ \t]*=)"
)
# Other ways to write an operator, one character for one so that offsets stay those of the text.
_STEP_CHARS = {**_MINUS, **str.maketrans("\u00b7\u22c5\u00d7\u2217\uff0a\u00f7\u2215\u2044\uff0b\uff1d", "*****///+=")}
_OP_WORDS = {
    "+": r"plus|added to|\+",
    "-": r"minus|less",
    "*": r"times|multiplied by",
    "/": r"divided by|over",
}
_VERB_WORDS = r"is|equals|gives|makes|=|to get|yields"


# A step pattern, its fixed operation (None: read from the match) and the words it needs: each
# tuple is a choice, one of which must occur in the text (lowercased) for the pattern to be scanned.
_Pattern = tuple[re.Pattern[str], str | None, tuple[tuple[str, ...], ...]]


def _words(alternatives: str) -> tuple[str, ...]:
    return tuple(word.replace("\\", "") for word in alternatives.split("|"))


def _phrase_pattern(template: str, op: str) -> _Pattern:
    pattern = re.escape(template.rstrip("."))
    for name in "abr":
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{_NUM})", 1)
    words = re.sub(r"\{[abr]\}", " ", template.rstrip(".")).lower().split()
    return re.compile(f"(?i){_NOT_AFTER_OP}{pattern}{_NOT_BEFORE_OP}"), op, tuple((word,) for word in words)


def _step_patterns() -> list[_Pattern]:
    patterns: list[_Pattern] = [(_SYMBOLIC, None, (("=",),)), (_REVERSED, None, (("=",),))]
    patterns += [_phrase_pattern(t, op) for op, phrases in VERBAL_PHRASES.items() for t in phrases]
    for op, words in _OP_WORDS.items():  # generic prose, for teacher rewrites
        patterns.append((re.compile(
            rf"(?i){_NOT_AFTER_OP}(?P<a>{_NUM})[ \t]+(?:{words})[ \t]+(?P<b>{_NUM}),?[ \t]+(?:{_VERB_WORDS})[ \t]+(?P<r>{_NUM}){_NOT_BEFORE_OP}"
        ), op, (_words(words), _words(_VERB_WORDS))))
    return patterns


_PATTERNS: list[_Pattern] | None = None


@dataclass(frozen=True)
class ClaimedStep:
    """A step as a completion wrote it: `a op b = r`, and whether it re-computes."""

    op: str
    left: Exact
    right: Exact
    result: Exact
    start: int
    end: int

    true = Step.true

    def same_as(self, step: Step) -> bool:
        if self.op != step.op or self.result != step.result:
            return False
        if (self.left, self.right) == (step.left, step.right):
            return True
        return self.op in "+*" and (self.left, self.right) == (step.right, step.left)


_INT = re.compile(r"-?\d+")


def _value(text: str) -> Exact | None:
    text = text.strip("()")
    if _INT.fullmatch(text):  # the common case, without a Fraction (~10x faster)
        return int(text)
    value = parse_number(text)
    return None if value is None else exact(value)


def extract_steps(text: str) -> list[ClaimedStep]:
    """Every `a op b = r` (or `r = a op b`) a completion claims, in order, in compact, think or
    verbal style, with `−`, `·`, `×`, `÷`, `(-2)` and `2,117` read as they are meant, and the
    step inside each rewrite of a chain (`6 - 11 * 6 = 6 - 66` claims `11 * 6 = 66`)."""
    global _PATTERNS
    if _PATTERNS is None:
        _PATTERNS = _step_patterns()
    text = text[:MAX_SCAN_CHARS].translate(_STEP_CHARS)
    lowered = text.lower()
    found: list[ClaimedStep] = []
    for pattern, fixed_op, needs in _PATTERNS:
        # Each scan is linear but there are two dozen; skip those whose words are absent (one
        # substring search each), so prose without them costs a few scans, not 24.
        if not all(any(word in lowered for word in choice) for choice in needs):
            continue
        for match in pattern.finditer(text):
            a, b, r = (_value(match[name]) for name in "abr")
            if a is None or b is None or r is None:
                continue
            op = fixed_op or match["op"]
            found.append(ClaimedStep(op, a, b, r, match.start(), match.end()))
            if len(found) >= 4 * MAX_STEPS:
                break
    if "=" in text:
        found += islice(_rewrite_steps(text), 4 * MAX_STEPS)
    found.sort(key=lambda step: step.start)
    steps, covered_to = [], -1
    for step in found:  # one claim per place: a phrasing and a generic match can overlap
        if step.start >= covered_to:
            steps.append(step)
            covered_to = step.end
    return steps[:MAX_STEPS]


_ARITHMETIC = re.compile(r"[-+*/\d.() \t=]+")  # a run of arithmetic on one line
_BINARY = re.compile(rf"(?P<a>{_NUM})(?P<op>[-+*/])(?P<b>{_NUM})")
_ONE_NUM = re.compile(_NUM)
_IN_NUMBER = "0123456789."


def _rewrite_steps(text: str) -> Iterator[ClaimedStep]:
    """The step each `before = after` of a chain claims when `after` is `before` with one
    `a op b` replaced by its result; a part that is no sub-expression (`10 - 3 + 2 = 10 - 5`)
    claims nothing."""
    for run in _ARITHMETIC.finditer(text):
        if "=" not in run[0]:
            continue
        start = run.start()
        parts = run[0].split("=")
        for before, after in zip(parts, parts[1:]):
            step = _rewrite(before, after, start)
            if step is not None:
                yield step
            start += len(before) + 1


def _rewrite(before: str, after: str, offset: int) -> ClaimedStep | None:
    places = [i for i, char in enumerate(before) if not char.isspace()]
    old, new = "".join(before.split()), "".join(after.split())
    head = len(commonprefix([old, new]))
    tail = len(commonprefix([old[head:][::-1], new[head:][::-1]]))
    while head and old[head - 1] in _IN_NUMBER:  # a number changes as a whole
        head -= 1
    while tail and old[len(old) - tail] in _IN_NUMBER:
        tail -= 1
    if not head and not tail:  # the whole statement: the step patterns read it
        return None
    middle, result = old[head:len(old) - tail], new[head:len(new) - tail]
    left, right = old[head - 1:head], old[len(old) - tail:len(old) - tail + 1]
    if middle[:1] == "(" and middle[-1:] == ")":
        middle, left, right = middle[1:-1], "(", ")"
    step, value = _BINARY.fullmatch(middle), _ONE_NUM.fullmatch(result)
    if step is None or value is None or not _sub_expression(left, step["op"], right):
        return None
    a, b, r = _value(step["a"]), _value(step["b"]), _value(result)
    if a is None or b is None or r is None:
        return None
    return ClaimedStep(step["op"], a, b, r, offset + places[head], offset + places[len(old) - tail - 1] + 1)


def _sub_expression(left: str, op: str, right: str) -> bool:
    """Whether `a op b` between these neighbours is computed first (left-associative precedence)."""
    tight = op in "*/"
    return (left in ("", "(") or (left in "+-" and tight)) and (right in ("", ")", "+", "-") or tight)


def parse_reference(steps: list[Step] | list[str]) -> list[Step]:
    """Reference steps as `Step`s, given as such or as their text (a dataset's `steps` column),
    read by `Step.parse`, the compiler's own format: never by the scanner of model output."""
    return [step if isinstance(step, Step) else Step.parse(str(step)) for step in steps]


@dataclass(frozen=True)
class StepReport:
    reference: int  # steps in the reference trace
    claimed: int  # steps the completion wrote
    wrong: int  # claimed steps that do not re-compute
    matched: int  # reference steps reproduced correctly and in order

    @property
    def score(self) -> float:
        """Matched reference steps, less one per false step, as a fraction of the reference."""
        if self.reference == 0:
            return 1.0 if self.wrong == 0 else 0.0
        return max(0.0, (self.matched - self.wrong) / self.reference)


def check_steps(text: str, reference: list[Step] | list[str]) -> StepReport:
    """Re-compute every claimed step and match the true ones against the reference, in order
    (longest common subsequence, so a skipped or extra step costs only itself)."""
    claimed = extract_steps(text or "")
    ref = parse_reference(reference)
    true_steps = [step for step in claimed if step.true]
    # Only steps of the reference can match: dropping the others first keeps the quadratic LCS
    # to the relevant few, not every true step of a long completion times the reference.
    keys = _reference_keys(ref)
    relevant = [step for step in true_steps if _keys(step)[0] in keys]
    return StepReport(len(ref), len(claimed), len(claimed) - len(true_steps), _lcs(relevant, ref))


def first_wrong_step(text: str, reference: list[Step] | list[str]) -> int | None:
    """Where a completion first goes wrong: the character offset of its first claimed step that
    does not re-compute or is no step of the reference (a true step of the wrong sub-expression,
    e.g. a misread operand), or None when every claimed step is a true reference step. Without a
    reference (a task with no steps) only false steps count."""
    keys = _reference_keys(parse_reference(reference))
    for step in extract_steps(text or ""):
        if not step.true or (keys and _keys(step)[0] not in keys):
            return step.start
    return None


def _reference_keys(reference: list[Step]) -> set[tuple]:
    return {key for step in reference for key in _keys(step)}


def _keys(step: Step | ClaimedStep) -> list[tuple]:
    """The (op, left, right, result) forms `same_as` accepts: both orders for `+` and `*`."""
    keys = [(step.op, step.left, step.right, step.result)]
    if step.op in "+*":
        keys.append((step.op, step.right, step.left, step.result))
    return keys


def _lcs(claimed: list[ClaimedStep], reference: list[Step]) -> int:
    previous = [0] * (len(reference) + 1)
    for step in claimed:
        current = [0]
        for j, ref in enumerate(reference):
            current.append(previous[j] + 1 if step.same_as(ref) else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]

