"""The one judge: answer extraction, exact equivalence and the step checker.

Model output is untrusted text: it is only ever matched with linear-time regular expressions
and read with `parse_number`, never evaluated; every scan is bounded in length and count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from r1kit.numbers import parse_number
from r1kit.problem import Step
from r1kit.render import VERBAL_PHRASES

MAX_ANSWER_CHARS = 200  # an answer slot longer than this is wrong, not parsed
MAX_SCAN_CHARS = 200_000  # the step checker reads at most this much of a completion
MAX_STEPS = 2_000
MATH_VERIFY_TIMEOUT_S = 2

# ---------------------------------------------------------------- answer extraction

_BOXED = "\\boxed{"
# The slot must start like a value (digit, sign, bracket, LaTeX, bold), so "no answer here" is none.
_MARKER = re.compile(r"(?i)\banswer\b(?:\s+is)?\s*[:=]?[ \t]*([-+\d.(\\$*](?:(?!answer\b)[^\n|<])*)")


def extract_answer(text: str | None) -> str | None:
    """The last `<answer>…</answer>` block, else the last `\\boxed{…}`, else the last marker
    (`answer 17`, `Answer: 17`, `The answer is 17.`). None when there is no answer."""
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
    return _clean_slot(last.group(1))


def _last_boxed(text: str) -> str | None:
    start = text.rfind(_BOXED)
    if start == -1:
        return None
    depth, i = 1, start + len(_BOXED)
    limit = min(len(text), i + MAX_ANSWER_CHARS * 5)
    for j in range(i, limit):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


def _clean_slot(slot: str) -> str:
    slot = slot.strip()
    # A sentence ends at ". " — what follows is prose, not part of the answer.
    slot = re.split(r"\.\s", slot, maxsplit=1)[0]
    slot = slot.strip().rstrip(".").strip()
    for wrapper in ("**", "$"):
        if len(slot) > 2 * len(wrapper) and slot.startswith(wrapper) and slot.endswith(wrapper):
            slot = slot[len(wrapper):-len(wrapper)].strip()
    return slot


# ---------------------------------------------------------------- equivalence

_LATEX_HINT = re.compile(r"[\\{}^$]")
_POWER_TOWER = re.compile(r"\^.*\^|\^\s*\{?\s*\d{4,}")


def is_correct(predicted: str | None, gold: str) -> bool:
    """Exact for integers, decimals and fractions (`12` = `12.0` = `+12` = `24/2`, `1/2` = `0.5`,
    `1,234` = `1234`); a slot with more than one value is wrong; LaTeX falls back to math-verify."""
    if predicted is None or len(predicted) > MAX_ANSWER_CHARS:
        return False
    predicted = _clean_slot(predicted)
    value, expected = parse_number(predicted), parse_number(gold)
    if value is not None and expected is not None:
        return value == expected
    if expected is not None and not _LATEX_HINT.search(predicted):
        return False  # plain text that is not one number: `12 or 13`, `12, 13`, `nan`
    return _math_verify(predicted, gold)


def _math_verify(predicted: str, gold: str) -> bool:
    if _POWER_TOWER.search(predicted):  # `2^{10^{10}}` would not finish
        return False
    try:
        from math_verify import parse, verify

        wrap = lambda s: s if "$" in s else f"${s}$"  # noqa: E731 - math-verify reads LaTeX in $…$
        gold_parsed = parse(wrap(gold), parsing_timeout=MATH_VERIFY_TIMEOUT_S)
        pred_parsed = parse(wrap(predicted), parsing_timeout=MATH_VERIFY_TIMEOUT_S)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=MATH_VERIFY_TIMEOUT_S))
    except Exception:  # a timeout or a parser failure on untrusted text is a wrong answer
        return False


# ---------------------------------------------------------------- step checker

_NUM = r"\(-?\d{1,30}(?:\.\d{1,30})?/\d{1,30}\)|-?\d{1,30}(?:\.\d{1,30})?(?:/\d{1,30})?"
_OPS = {"+": "+", "-": "-", "*": "*", "/": "/", "×": "*", "÷": "/", "x": "*"}
_SYMBOLIC = re.compile(
    rf"(?<![\w.)/])(?P<a>{_NUM})\s*(?P<op>[-+*/×÷])\s*(?P<b>{_NUM})\s*=\s*(?P<r>{_NUM})(?![\w/(])"  # `6 - 4 = 2x` is not the step `6 - 4 = 2`
)
_OP_WORDS = {
    "+": r"plus|added to|\+",
    "-": r"minus|less",
    "*": r"times|multiplied by",
    "/": r"divided by|over",
}
_VERB_WORDS = r"is|equals|gives|makes|=|to get|yields"


def _phrase_pattern(template: str, op: str) -> tuple[re.Pattern[str], str]:
    pattern = re.escape(template.rstrip("."))
    for name in "abr":
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{_NUM})", 1)
    return re.compile(f"(?i)(?<![\\w.)/]){pattern}(?![\\d/])"), op


def _verbal_patterns() -> list[tuple[re.Pattern[str], str]]:
    patterns = [_phrase_pattern(t, op) for op, phrases in VERBAL_PHRASES.items() for t in phrases]
    for op, words in _OP_WORDS.items():  # generic prose, for teacher rewrites
        patterns.append((re.compile(
            rf"(?i)(?<![\w.)/])(?P<a>{_NUM})\s+(?:{words})\s+(?P<b>{_NUM}),?\s+(?:{_VERB_WORDS})\s+(?P<r>{_NUM})(?![\d/])"
        ), op))
    return patterns


_VERBAL: list[tuple[re.Pattern[str], str]] | None = None


@dataclass(frozen=True)
class ClaimedStep:
    """A step as a completion wrote it: `a op b = r`, and whether it re-computes."""

    op: str
    left: Fraction
    right: Fraction
    result: Fraction
    start: int
    end: int

    true = Step.true

    def same_as(self, step: Step | ClaimedStep) -> bool:
        if self.op != step.op or self.result != step.result:
            return False
        if (self.left, self.right) == (step.left, step.right):
            return True
        return self.op in "+*" and (self.left, self.right) == (step.right, step.left)


def _value(text: str) -> Fraction | None:
    return parse_number(text.strip("()"))


def extract_steps(text: str) -> list[ClaimedStep]:
    """Every `a op b = r` a completion claims, in order, in compact, think or verbal style."""
    global _VERBAL
    if _VERBAL is None:
        _VERBAL = _verbal_patterns()
    text = text[:MAX_SCAN_CHARS]
    found: list[ClaimedStep] = []
    for pattern, fixed_op in [(_SYMBOLIC, None), *_VERBAL]:
        for match in pattern.finditer(text):
            a, b, r = (_value(match[name]) for name in "abr")
            if a is None or b is None or r is None:
                continue
            op = fixed_op or _OPS[match["op"]]
            found.append(ClaimedStep(op, a, b, r, match.start(), match.end()))
            if len(found) >= 4 * MAX_STEPS:
                break
    found.sort(key=lambda step: step.start)
    steps, covered_to = [], -1
    for step in found:  # one claim per place: a phrasing and a generic match can overlap
        if step.start >= covered_to:
            steps.append(step)
            covered_to = step.end
    return steps[:MAX_STEPS]


def parse_reference(steps: list[Step] | list[str]) -> list[Step | ClaimedStep]:
    """Reference steps as `Step`s, or as strings like `3 * 4 = 12` (a dataset's `steps` column)."""
    out: list[Step | ClaimedStep] = []
    for step in steps:
        if isinstance(step, Step):
            out.append(step)
        else:
            out.extend(extract_steps(str(step))[:1])
    return out


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
    return StepReport(len(ref), len(claimed), len(claimed) - len(true_steps), _lcs(true_steps, ref))


def _lcs(claimed: list[ClaimedStep], reference: list[Step | ClaimedStep]) -> int:
    previous = [0] * (len(reference) + 1)
    for step in claimed:
        current = [0]
        for j, ref in enumerate(reference):
            current.append(previous[j] + 1 if step.same_as(ref) else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def step_score(text: str, reference: list[Step] | list[str]) -> float:
    return check_steps(text, reference).score
