"""The compiler: parsing, exact evaluation, steps; property tests against an independent evaluator."""

import ast
import re
import json
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1kit import tasks
from r1kit.numbers import parse_number
from r1kit.expr import EvaluationError, ParseError, depth, check_granularity, evaluate, parse, to_text, value_of
from r1kit.tasks.arithmetic import LEVELS
from r1kit.problem import apply_op


def independent_value(text: str) -> Fraction:
    """Python's own parser walked over Fractions: a second opinion that shares no code with r1kit."""
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            return {"+": left + right, "-": left - right, "*": left * right}.get(ops[type(node.op)]) \
                if ops[type(node.op)] != "/" else left / right
        raise AssertionError(f"unexpected node {node!r}")

    return walk(ast.parse(text, mode="eval"))


@pytest.mark.parametrize(
    "text, value, steps",
    [
        ("12 + 3 * (4 - 1)", 21, ["4 - 1 = 3", "3 * 3 = 9", "12 + 9 = 21"]),
        ("85 - -82", 167, ["85 - -82 = 167"]),
        ("-(4 + 3)", -7, ["4 + 3 = 7", "-1 * 7 = -7"]),
        ("10 - 4 - 3", 3, ["10 - 4 = 6", "6 - 3 = 3"]),  # left associative
        ("48 / 4 / 2", 6, ["48 / 4 = 12", "12 / 2 = 6"]),
        ("2.5 * 4", 10, ["2.5 * 4 = 10"]),
        ("7 / 2", Fraction(7, 2), ["7 / 2 = 3.5"]),
        ("1 / 3 + 1", Fraction(4, 3), ["1 / 3 = 1/3", "1/3 + 1 = 4/3"]),
        ("-3 * 4", -12, ["-3 * 4 = -12"]),
        ("((2))", 2, []),
    ],
)
def test_evaluation_steps(text, value, steps):
    result, trace = evaluate(parse(text))
    assert result == value
    assert [s.text() for s in trace] == steps


def test_partial_products():
    _, steps = evaluate(parse("36 * 18"), granularity="partial")
    assert [s.text() for s in steps] == ["36 * 10 = 360", "36 * 8 = 288", "360 + 288 = 648"]
    _, steps = evaluate(parse("7 * 105"), granularity="partial")
    assert [s.text() for s in steps] == ["7 * 100 = 700", "7 * 5 = 35", "700 + 35 = 735"]
    _, steps = evaluate(parse("3 * 4"), granularity="partial")
    assert [s.text() for s in steps] == ["3 * 4 = 12"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("12 + ", "expected a number but found the end of the input at column 6"),
        ("1 + * 2", "expected a number but found '*' at column 5"),
        ("(1 + 2", "expected ')' but found the end of the input at column 7"),
        ("3 4", "expected an operator but found '4' at column 3"),
        ("2 ** 3", "expected a number but found '*' at column 4"),
        ("1 $ 2", "unexpected character '$' at column 3"),
        ("__import__('os')", "unexpected character '_' at column 1"),
        ("1e9999", "unexpected character 'e' at column 2"),
        ("", "expected a number but found the end of the input at column 1"),
    ],
)
def test_parse_errors_name_column_and_expectation(text, message):
    with pytest.raises(ParseError) as error:
        parse(text)
    assert str(error.value) == message


def test_division_by_zero_in_user_input():
    with pytest.raises(EvaluationError, match="division by zero"):
        value_of("4 / (2 - 2)")


def test_bounded_inputs():
    for text in ["(" * 10_000 + "1" + ")" * 10_000, "9" * 100_000, "1+" * 5_000 + "1"]:
        with pytest.raises(ParseError):
            parse(text)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_generated_problems_are_exact(level):
    task = tasks.get("arithmetic")
    for problem in task.generate(150, seed=7, level=level):
        assert to_text(parse(problem.question)) == problem.question  # canonical text round-trips
        if problem.steps:
            assert problem.steps[-1].result == independent_value(problem.question)
        for step in problem.steps:
            assert apply_op(step.op, step.left, step.right) == step.result
        assert parse_number(problem.answer) == independent_value(problem.question)


# Random expression *text* (not from our generator): any tree the grammar allows.
literal = st.one_of(st.integers(0, 999).map(str), st.decimals(0, 99, places=1).map(str))
expression = st.recursive(
    literal,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from("+-*/"), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"-({e})"),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(expression)
def test_any_expression_matches_independent_evaluation(text):
    try:
        expected = independent_value(text)
    except ZeroDivisionError:
        with pytest.raises(EvaluationError):
            value_of(text)
        return
    value, steps = evaluate(parse(text), granularity="partial")
    assert value == expected
    for step in steps:
        assert apply_op(step.op, step.left, step.right) == step.result
    assert value_of(to_text(parse(text))) == expected


@settings(max_examples=200, deadline=None)
@given(expression)
def test_digit_trace_keeps_every_op_step(text):
    try:
        value, plain = evaluate(parse(text))
    except EvaluationError:
        return
    digit_value, steps = evaluate(parse(text), granularity="digit")
    assert digit_value == value and all(step.true for step in steps)
    assert [(s.op, s.left, s.right, s.result) for s in steps if s.kind == "op"] == \
        [(s.op, s.left, s.right, s.result) for s in plain]


def test_granularity_names():
    assert [check_granularity(g) for g in ("op", "partial", "digit")] == ["op", "partial", "digit"]
    with pytest.raises(ValueError, match="granularity"):
        check_granularity("bits")


@settings(max_examples=200, deadline=None)
@given(level=st.sampled_from(sorted(LEVELS)), seed=st.integers(0, 10**6))
def test_property_final_step_equals_independent_value(level, seed):
    (problem,) = tasks.get("arithmetic").generate(1, seed=seed, level=level)
    assert problem.steps[-1].result == independent_value(problem.question)


def test_generation_is_deterministic_and_distinct():
    task = tasks.get("arithmetic")
    a = task.generate(500, seed=3, level=3)
    b = task.generate(500, seed=3, level=3)
    assert [(p.id, p.question, p.answer) for p in a] == [(p.id, p.question, p.answer) for p in b]
    assert len({p.question for p in a}) == 500
    assert a != task.generate(500, seed=4, level=3)


def test_deterministic_across_processes():
    code = (
        "import json; from r1kit import tasks;"
        "ps = [p for L in range(1, 7) for p in tasks.get('arithmetic').generate(50, seed=11, level=L)];"
        "print(json.dumps([(p.id, p.question, p.answer, [s.text() for s in p.steps]) for p in ps]))"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout
        for seed in (1, 2)
    ]
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[0])) == 300


def test_level_four_has_every_ordinary_form():
    questions = [p.question for p in tasks.get("arithmetic").generate(400, seed=0, level=4)]
    assert any(re.search(r"(?:^|[(\s])-\d", q) for q in questions)  # negative literal
    assert any("-(" in q for q in questions)  # unary minus
    assert any(depth(parse(q)) == 2 for q in questions)  # nested parentheses
    assert any("/" in q for q in questions)  # exact division
