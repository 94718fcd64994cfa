"""The adversarial catalogue: answers that fooled the judge, and right answers it refused, each
with the reward it must get. The rules they follow are in docs/verifiers.md.

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
    ("(a+b+c+d)^{12}(a+b+c+d)^{12}", "(a+b+c+d)^{24}", 0.0),  # degrees add over a product: 24
    ("(a+b)^{7}(a+b)^{7}", "(a+b)^{14}", 0.0),
]
COSTLY = [slot for slot, *_ in CATALOGUE[CATALOGUE.index(("\\boxed{(10!)!}", "1", 0.0)):]]

# An answer is a value: the question copied into the slot, however LaTeX dresses it, is no answer.
CATALOGUE += [
    ("45 + 17\\,", "62", 0.0),
    ("\\left(6 - 11 * 6\\right)", "-60", 0.0),
    ("-34 + (50 - 11) \\cdot 24 + 28", "930", 0.0),
    ("\\frac{45+17}{1}", "62", 0.0),
    ("45 + 17\\;", "62", 0.0),
    ("45\\!+\\!17", "62", 0.0),
    ("\\displaystyle 45+17\\,", "62", 0.0),
    ("45 + 17\\!", "62", 0.0),
    ("\\!45 + 17", "62", 0.0),
    ("45 + 17\\:", "62", 0.0),
    ("45 + 17\\quad", "62", 0.0),
    ("\\quad 45 + 17", "62", 0.0),
    ("45 \\, + \\, 17", "62", 0.0),
    ("{45 + 17}\\,", "62", 0.0),
    ("45+17\\,\\text{}", "62", 0.0),
    ("\\left(45+17\\right)", "62", 0.0),
    ("\\left[45+17\\right]", "62", 0.0),
    ("\\dfrac{45+17}{1}", "62", 0.0),
    ("\\tfrac{45+17}{1}", "62", 0.0),
    ("45 \\times 1 + 17", "62", 0.0),
    ("62 + 0\\,", "62", 0.0),
    ("6 - 11 \\times 6", "-60", 0.0),
    ("\\left(6 - 66\\right)", "-60", 0.0),
    ("\\sqrt{3844}", "62", 0.0),
    ("\\sqrt{3844}\\,", "62", 0.0),
    ("2^{6}-2\\,", "62", 0.0),
    ("\\left(21\\right)", "21", 0.0),  # brackets are not a wrapper, as `(21)` is not
    ("45 + 17", "62", 0.0),  # refused before as well, in these forms
    ("\\displaystyle 45+17", "62", 0.0),
    ("~45+17~", "62", 0.0),
    ("\\mathrm{45+17}", "62", 0.0),
    ("$45+17$", "62", 0.0),
    ("\\boxed{45+17}", "62", 0.0),
    # ...while a number in any of these forms is one
    ("\\frac{124}{2}", "62", 1.0),
    ("\\frac{124}{2}\\,", "62", 1.0),
    ("\\displaystyle 62", "62", 1.0),
    ("\\mathrm{62}", "62", 1.0),
    ("\\,62\\,", "62", 1.0),
    ("~62~", "62", 1.0),
    ("62\\;", "62", 1.0),
    ("\\!62", "62", 1.0),
    ("\\text{62}", "62", 1.0),
    ("1\\,234", "1234", 1.0),
    ("10\\!000", "10000", 1.0),
    ("1{,}234", "1234", 1.0),
    ("21\\,22", "2122", 0.0),  # a space between values that is no thousands separator
    ("50\\%", "50", 1.0),
    ("-\\frac{1}{2}", "-0.5", 1.0),
    ("\\frac{-1}{2}", "-1/2", 1.0),
    ("\\dfrac12", "0.5", 1.0),
    ("\\tfrac{7}{3}", "7/3", 1.0),
    ("\\frac{1}{2}", "\\frac{2}{4}", 1.0),
    # exact decimals, whatever is around them
    (".3333333\\,", "1/3", 0.0),
    ("\\,2.3333333", "7/3", 0.0),
    ("\\,0.1428571", "1/7", 0.0),
    ("\\,.3333333", "1/3", 0.0),
    (".5000001\\,", "1/2", 0.0),
    ("~0.3333333", "1/3", 0.0),
    ("\\;.3333333", "1/3", 0.0),
    ("\\displaystyle 0.3333333", "1/3", 0.0),
    ("\\mathrm{0.3333333}", "1/3", 0.0),
    ("\\,1.4142136", "\\sqrt{2}", 0.0),
    (".7071068", "\\frac{\\sqrt{2}}{2}", 0.0),
    ("\\,0.5\\,", "1/2", 1.0),
    (".5", "1/2", 1.0),
    # one value per slot
    ("17. No wait, 18", "17", 0.0),
    ("17. No wait, 18", "18", 0.0),
    ("21. 22", "21", 0.0),
    ("21.\n22", "21", 0.0),
    ("21.\n22", "22", 0.0),
    ("$21$ or $22$", "22", 0.0),
    ("21 \\lor 22", "22", 0.0),
    ("21 \\vee 22", "21", 0.0),
    ("21 \\text{ or } 22", "22", 0.0),
    ("21, 22", "22", 0.0),
    ("21; 22", "21", 0.0),
    ("\\boxed{21}\\boxed{22}", "22", 0.0),
    ("\\{21, 22\\}", "21", 0.0),
    ("21 \\quad 22", "22", 0.0),
    ("\\sqrt{2} or 2", "\\sqrt{2}", 0.0),
    ("\\sqrt{2} \\lor 2", "\\sqrt{2}", 0.0),
    ("$\\sqrt{2}$ and $2$", "\\sqrt{2}", 0.0),
    # right answers in common forms
    ("x = 21", "21", 1.0),
    ("x = \\frac{42}{2}", "21", 1.0),
    ("\\(x = 21\\)", "21", 1.0),
    ("$x=21$", "21", 1.0),
    ("\\boxed{x = 21}", "21", 1.0),
    ("x = 22", "21", 0.0),
    ("x = 21 + 0", "21", 0.0),
]

# Whole completions: the boxed and marker paths, judged by the same rules.
COMPLETIONS = [
    ("The answer is $6 - 11 \\times 6$.", "-60", 0.0),
    ("The answer is 17. No wait, it is 18.", "17", 0.0),
    ("The answer is 17. No wait, it is 18.", "18", 0.0),
    ("The answer is 17. No wait, the answer is 18.", "18", 1.0),  # the final committed value
    ("The answer is 17. No wait, the answer is 18.", "17", 0.0),
    ("The answer is 21. It was easy.", "21", 1.0),
    ("Answer: 21 or 22", "22", 0.0),
    ("So \\boxed{21} or \\boxed{22}.", "22", 0.0),
    ("First \\boxed{21}.\nThen, checking again, \\boxed{22}.", "22", 1.0),
    ("The answer is $21$ or $22$.", "22", 0.0),
    ("The answer is $45 + 17$.", "62", 0.0),
    ("\\boxed{45 + 17\\,}", "62", 0.0),
    ("Answer\uff1a21", "21", 1.0),  # full-width colon
    ("\\boxed {21}", "21", 1.0),
    ("\\boxed {x = 21}", "21", 1.0),
    ("The answer is \uff12\uff11.", "21", 1.0),
]

AFFORDABLE = ["\\frac{1}{2}", "\\sqrt{2}", "2^{1/2}", "x^2+2x+1", "(x+1)^{2}", "2^{1000}", "(2^{10})^{10}",
              "\\sin(x)+\\cos(x)", "x^3+y^3+z^3", "(x^{3})^{4}", "(x+y)^{3}(x-y)^{3}", "x^{6}+y^{6}+z^{6}", "\\frac{x+1}{x-1}", "\\left(\\frac{1}{2}\\right)^{2}", "50\\%", "10\\!000"]


@pytest.mark.parametrize("slot, gold, reward", CATALOGUE, ids=[f"case{i}" for i in range(len(CATALOGUE))])
def test_catalogue(slot, gold, reward):
    assert accuracy_reward([f"<think>x</think><answer>{slot}</answer>"], answer=[gold]) == [reward]


@pytest.mark.parametrize("text, gold, reward", COMPLETIONS, ids=[f"completion{i}" for i in range(len(COMPLETIONS))])
def test_completions(text, gold, reward):
    assert accuracy_reward([text], answer=[gold]) == [reward]


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


# ---------------------------------------------------------------- steps in common notations

CHAIN = ["11 * 6 = 66", "6 - 66 = -60"]  # 6 - 11 * 6

# (completion, reference steps, step reward): true work scores the same in any common notation.
STEP_NOTATIONS = [
    ("\u22122 \u2212 10 = \u221212", ["-2 - 10 = -12"], 1.0),  # U+2212 minus
    ("5 \u2013 3 = 2", ["5 - 3 = 2"], 1.0),  # en dash
    ("3 \u00b7 4 = 12", ["3 * 4 = 12"], 1.0),  # middle dot
    ("3 \u22c5 4 = 12", ["3 * 4 = 12"], 1.0),  # dot operator
    ("3 \u00d7 4 = 12", ["3 * 4 = 12"], 1.0),
    ("12 \u00f7 4 = 3", ["12 / 4 = 3"], 1.0),
    ("(-2) - 10 = -12", ["-2 - 10 = -12"], 1.0),  # a parenthesised negative
    ("6 - (-2) = 8", ["6 - -2 = 8"], 1.0),
    ("(\u22122) \u00b7 (\u22123) = 6", ["-2 * -3 = 6"], 1.0),
    ("29 * 73 = 2,117\n2,117 * 59 = 124,903", ["29 * 73 = 2117", "2117 * 59 = 124903"], 1.0),  # thousands
    ("x = 3 * 4 = 12", ["3 * 4 = 12"], 1.0),  # a = b = c is two claims
    ("3 * 4 = 12 = 12", ["3 * 4 = 12"], 1.0),
    ("6 - 11 * 6 = 6 - 66 = -60", CHAIN, 1.0),  # a chain of rewrites: 11 * 6 → 66, then 6 - 66 → -60
    ("6 - 11 * 6 = 6 - 67 = -61", CHAIN, 0.0),  # ...each rewrite checked
    ("(9 + 5) * 16 + 5 = 14 * 16 + 5 = 224 + 5 = 229", ["9 + 5 = 14", "14 * 16 = 224", "224 + 5 = 229"], 1.0),
    ("10 - 3 + 2 = 10 - 5", [], 1.0),  # `3 + 2` is no sub-expression there: no claim
    ("66 = 11 * 6\n-60 = 6 - 66", CHAIN, 1.0),  # written right to left, one per line
    ("5 - 2 + 1 = 4", [], 1.0),  # no false `2 + 1 = 4` inside a true statement
    ("3 * 4 = 12\n+ 5 = 17", ["3 * 4 = 12"], 1.0),  # no claim across a line break
    ("Then: -3 * 4 = -12 -> done", ["-3 * 4 = -12"], 1.0),  # an operator with no operand joins nothing
    ("3 * 4 = 13", ["3 * 4 = 12"], 0.0),  # a false step is still one
    ("3 \u00b7 4 = 13", ["3 * 4 = 12"], 0.0),
]


@pytest.mark.parametrize("text, reference, reward", STEP_NOTATIONS, ids=[f"steps{i}" for i in range(len(STEP_NOTATIONS))])
def test_step_notations(text, reference, reward):
    assert step_reward([text], steps=[reference]) == [reward]


def test_chained_and_multiline_steps_hold_no_false_claim():
    assert verify.first_wrong_step("6 - 11 * 6 = 6 - 66 = -60", CHAIN) is None
    assert verify.first_wrong_step("6 - 11 * 6 = 6 - 67 = -61", CHAIN) == 4  # the wrong rewrite
    assert verify.first_wrong_step("66 = 11 * 6\n-60 = 6 - 66", CHAIN) is None
    assert verify.first_wrong_step("29 * 73 = 2,117", []) is None
    assert verify.first_wrong_step("a: 3 \u00b7 4 = 13", []) == 3  # offsets are the text's own
