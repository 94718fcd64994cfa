"""The adversarial catalogue: answers that fooled the judge, each with the reward it must get.

New names are read as `verify.<name>` inside the tests, so the catalogue runs on any version.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from r1kit import verify
from r1kit.rewards import accuracy_reward, step_reward

SIX_FRACTIONS = "\\frac{a+b}{c+d}+\\frac{f+g}{h+j}+\\frac{k+l}{m+n}+\\frac{o+p}{q+r}+\\frac{s+t}{u+v}+\\frac{w+x}{y+z}"
NESTED_TRIG = "\\sin(\\cos(\\tan(\\sin(\\cos(\\tan(\\sin(\\cos(1))))))))"

# (answer slot, gold, reward)
CATALOGUE = [
    # decimals are exact however they are wrapped: math-verify rounds floats to 6 places
    ("{0.3333333}", "1/3", 0.0),
    ("\\(2.5000001\\)", "2.5", 0.0),
    ("$0.3333333$", "1/3", 0.0),
    ("\\[0.3333333\\]", "1/3", 0.0),
    ("\\boxed{0.3333333}", "1/3", 0.0),
    ("\\boxed{{0.3333333}}", "1/3", 0.0),
    ("\\frac{0.3333333}{1}", "1/3", 0.0),  # inside LaTeX too
    ("1.41421356", "\\sqrt{2}", 0.0),
    ("\\frac{1}{3}", "0.3333333", 0.0),  # a decimal gold answer is exact as well
    ("{2.5}", "2.5", 1.0),
    ("\\(5/2\\)", "2.5", 1.0),
    ("$$\\boxed{2.50}$$", "5/2", 1.0),
    ("\\frac{0.5}{1}", "1/2", 1.0),
    ("\\frac{6}{4}", "1.5", 1.0),
    ("{1}{2}", "12", 0.0),  # two groups, not one wrapped number
    # Unicode digits and signs
    ("\u221214", "-14", 1.0),  # minus sign
    ("\u201314", "-14", 1.0),  # en dash as minus
    ("\uff0d14", "-14", 1.0),  # fullwidth hyphen-minus
    ("\uff11\uff14", "14", 1.0),  # fullwidth digits
    ("\uff0b14", "14", 1.0),  # fullwidth plus
    ("\u200914\u00a0", "14", 1.0),  # thin space, NBSP
    ("1\u200b4", "14", 1.0),  # zero-width space
    ("\u22121\u20442", "-0.5", 1.0),  # fraction slash
    ("10\u00b2", "102", 0.0),  # a superscript is not a digit
    ("2\u00bd", "21/2", 0.0),  # nor is a vulgar fraction
    ("\u221214", "14", 0.0),
    # text gold answers: normalised text, never algebra on letters
    ("ruof", "four", 0.0),
    ("sirap", "Paris", 0.0),
    ("four", "4", 0.0),
    ("4", "four", 0.0),
    ("Paris", "Paris", 1.0),
    ("paris.", "Paris", 1.0),
    ("\\text{Paris}", "Paris", 1.0),
    ('"Paris"', "Paris", 1.0),
    ("**Paris**", "Paris", 1.0),
    ("  New \n York ", "New York", 1.0),
    ("St. Louis", "St. Louis", 1.0),
    ("(B)", "B", 1.0),
    ("A", "B", 0.0),
    ("\\text{ruof}", "\\text{four}", 0.0),
    # LaTeX math still goes through math-verify
    ("\\frac{1}{2}", "0.5", 1.0),
    ("\\sqrt{2}", "\\sqrt{2}", 1.0),
    ("2^{1/2}", "\\sqrt{2}", 1.0),
    ("x^2+2x+1", "(x+1)^2", 1.0),
    ("\\frac{1}{3}", "\\frac{2}{6}", 1.0),
    # refused before evaluation: too costly for sympy
    ("\\boxed{(10!)!}", "1", 0.0),
    ("\\binom{100000000}{50000000}", "1", 0.0),
    ("\\dbinom{100}{50}", "1", 0.0),
    ("2^{10^{10}}", "1", 0.0),
    ("2^{99999}", "1", 0.0),
    ("((2^{999})^{999})^{999}", "1", 0.0),
    ("2**1000000", "1", 0.0),
    ("(x+y+z)^{50}", "1", 0.0),
    ("((x+y)^{4})^{4}", "1", 0.0),  # nested powers multiply
    ("\\sum_{k=1}^{100} k", "5050", 0.0),
    ("\\int_0^1 x\\,dx", "1/2", 0.0),
    ("\\lim_{x\\to 0} x", "0", 0.0),
    (SIX_FRACTIONS, "1", 0.0),
    (NESTED_TRIG, "1", 0.0),
    ("\\frac{1}{2}" + "+0" * 100, "1/2", 0.0),  # over-long
]

COSTLY = [slot for slot, *_ in CATALOGUE[CATALOGUE.index(("\\boxed{(10!)!}", "1", 0.0)):]]
AFFORDABLE = ["\\frac{1}{2}", "\\sqrt{2}", "2^{1/2}", "x^2+2x+1", "(x+1)^{2}", "2^{1000}", "(2^{10})^{10}",
              "\\sin(x)+\\cos(x)", "x^3+y^3+z^3", "(x^{3})^{4}", "\\frac{x+1}{x-1}", "\\left(\\frac{1}{2}\\right)^{2}", "50\\%", "10\\!000"]


@pytest.mark.parametrize("slot, gold, reward", CATALOGUE, ids=[f"case{i}" for i in range(len(CATALOGUE))])
def test_catalogue(slot, gold, reward):
    assert accuracy_reward([f"<think>x</think><answer>{slot}</answer>"], answer=[gold]) == [reward]


@pytest.mark.parametrize("slot", COSTLY)
def test_costly_latex_is_refused_before_evaluation(slot):
    assert verify.latex_too_costly(slot)


@pytest.mark.parametrize("slot", AFFORDABLE)
def test_affordable_latex_is_evaluated(slot):
    assert not verify.latex_too_costly(slot)


def test_latex_is_judged_in_any_thread():
    """math-verify's timeout is signal.alarm, main thread only: elsewhere every LaTeX answer was 0."""
    latex = [(slot, gold, reward) for slot, gold, reward in CATALOGUE if "\\" in slot + gold]
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda case: float(verify.is_correct(case[0], case[1])), latex))
    assert verdicts == [reward for *_, reward in latex]


def test_answer_kinds():
    assert [verify.answer_kind(g) for g in ("12", "\u221214", "$0.5$", "\\frac{1}{2}", "x = 21", "\\sqrt{2}", "(1, 2)",
                                           "Paris", "\\text{B}")] == \
        ["number", "number", "number", "number", "number", "latex", "latex", "text", "text"]
    assert verify.normalize_text(' \u201cNew\u00a0  York.\u201d ') == "new york"
    assert verify.normalize_unicode("\u2212\uff11\uff12\u2009\uff0b\u00b2") == "-12 +\u00b2"


@pytest.mark.parametrize("text, flexible, strict", [
    ("So, the final answer is `38 + 45 = 83`.", "83", None),
    ("<think>2 + 2 = 4</think><answer>5</answer>", "5", "5"),
    ("<answer>about 7 apples</answer> and 9 later", "7", "about 7 apples"),
    ("<answer>none</answer> but 9", "9", "none"),
    ("The total is $1,234.", "1,234", None),
    ("The answer is 1,234.50 dollars.", "1,234.50", "1,234.50 dollars"),
    ("x = -3", "-3", None),
    ("5-3", "3", None),
    ("It is 2.5 km, or .5 more", ".5", None),
    ("3/4 of the cake", "3/4", None),
    ("answer \u221214", "-14", "\u221214"),
    ("1,2345", "2345", None),
    ("no numbers here", None, None),
    ("", None, None),
    (None, None, None),
    ("9" * 100_000, None, None),  # not a number, too long
])
def test_extract_flexible(text, flexible, strict):
    assert verify.extract_flexible(text) == flexible
    assert verify.extract_answer(text) == strict


def test_flexible_reads_only_the_tail():
    assert verify.extract_flexible("1 " + "x" * 1_000_000) is None
    assert verify.extract_flexible("x" * 1_000_000 + " 42") == "42"


# ---------------------------------------------------------------- cost of scanning

# Each took seconds (quadratic in the blanks after "answer"); still judged, in linear time.
SLOW_SCANS = [
    "answer" + " " * 500_000 + "x",
    "answer" + " \t" * 500_000 + "21",
    "The answer is" + " " * 500_000,
]


@pytest.mark.parametrize("text", SLOW_SCANS, ids=[f"scan{i}" for i in range(len(SLOW_SCANS))])
def test_answer_marker_scan_is_linear(text):
    start = time.process_time()
    accuracy_reward([text], answer=["21"])
    assert time.process_time() - start < 5  # a guard against the quadratic scan, not a benchmark


def test_step_patterns_skipped_only_when_their_words_are_absent(monkeypatch):
    """Skipping a pattern whose words are absent never changes what the checker finds."""
    from r1kit import tasks
    from r1kit.render import completion_text

    texts = [completion_text(p, style) for p in tasks.get("arithmetic").generate(30, seed=3, level=4)
             for style in ("compact", "think", "verbal")]
    texts += ["3 times 3 is 9, and 9 plus 12 equals 21", "4 less 1 makes 3; 6 over 2 yields 3", "1+1=2 " * 50]
    gated = [verify.extract_steps(t) for t in texts]
    monkeypatch.setattr(verify, "_PATTERNS", [(p, op, ()) for p, op, _ in verify._PATTERNS])
    assert [verify.extract_steps(t) for t in texts] == gated


def test_irrelevant_true_steps_do_not_enter_the_lcs():
    steps = ["4 - 1 = 3", "3 * 3 = 9", "12 + 9 = 21"]
    text = "1+1=2;" * 1_000 + "4-1=3;9=3*3;3*3=9;9+12=21"
    assert step_reward([text], steps=[steps]) == [1.0]
