"""The math compiler's front and middle: text → tokens → AST → exact steps.

A hand-written tokenizer and recursive-descent parser (never `eval`) for `+ - * /`, parentheses,
unary minus, negative literals, integers and decimals. Evaluation walks the tree in post-order
and emits one `Step` per operation with exact `Fraction` results. Input size, literal length and
nesting depth are bounded so that untrusted text can't exhaust time or memory.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Literal

from r1kit.errors import R1kitError
from r1kit.numbers import Exact, exact, format_number
from r1kit.problem import Step, apply_op

MAX_EXPRESSION_CHARS = 2_000
MAX_LITERAL_DIGITS = 30
MAX_DEPTH = 64
MAX_OPERATORS = 256  # evaluation and printing recurse over the tree: keep it far from Python's limit
MAX_DIGIT_PRODUCTS = 144  # a longer long multiplication (digits x digits) stays one step at digit level


class ParseError(R1kitError):
    def __init__(self, message: str, column: int):
        super().__init__(f"{message} at column {column}")
        self.column = column


class EvaluationError(R1kitError):
    pass


# ---------------------------------------------------------------- AST


@dataclass(slots=True)
class Num:
    value: Exact
    text: str  # as written, so `2.50` prints back as `2.50`


@dataclass(slots=True)
class Neg:
    operand: Node


@dataclass(slots=True)
class BinOp:
    op: str
    left: Node
    right: Node


Node = Num | Neg | BinOp

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


# ---------------------------------------------------------------- tokenizer

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([-+*/()]))")


@dataclass(slots=True)
class Token:
    kind: str  # "num", "op", "(", ")", "end"
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ParseError(f"expression longer than {MAX_EXPRESSION_CHARS} characters", 1)
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            if text[position:].strip() == "":
                break
            column = position + 1 + (len(text[position:]) - len(text[position:].lstrip()))
            raise ParseError(f"unexpected character {text[column - 1]!r}", column)
        column = match.start(match.lastindex) + 1
        number, symbol = match.groups()
        if number is not None:
            if len(number.replace(".", "")) > MAX_LITERAL_DIGITS:
                raise ParseError(f"number longer than {MAX_LITERAL_DIGITS} digits", column)
            tokens.append(Token("num", number, column))
        elif symbol in "()":
            tokens.append(Token(symbol, symbol, column))
        else:
            tokens.append(Token("op", symbol, column))
        position = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    operators = [t for t in tokens if t.kind == "op"]
    if len(operators) > MAX_OPERATORS:
        raise ParseError(f"more than {MAX_OPERATORS} operators", operators[MAX_OPERATORS].column)
    return tokens


# ---------------------------------------------------------------- parser


class _Parser:
    """expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ;
    unary := '-' unary | '+' unary | atom ; atom := NUMBER | '(' expr ')'"""

    def __init__(self, tokens: list[Token]):
        self.tokens, self.index, self.depth = tokens, 0, 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def binary(self, operators: str, operand) -> Node:
        node = operand()
        while self.current.kind == "op" and self.current.text in operators:
            op = self.advance().text
            node = BinOp(op, node, operand())
        return node

    def expr(self) -> Node:
        return self.binary("+-", self.term)

    def term(self) -> Node:
        return self.binary("*/", self.unary)

    def unary(self) -> Node:
        token = self.current
        if token.kind == "op" and token.text in "+-":
            self.enter(token)
            self.advance()
            operand = self.unary()
            self.depth -= 1
            if token.text == "+":
                return operand
            if isinstance(operand, Num) and not operand.text.startswith("-") and self.previous_was_literal_minus():
                return Num(-operand.value, "-" + operand.text)
            return Neg(operand)
        return self.atom()

    def previous_was_literal_minus(self) -> bool:
        # `-82` is a negative literal only when the minus touches a bare number (`-(82)` is a negation).
        minus, number = self.tokens[self.index - 2], self.tokens[self.index - 1]
        return minus.text == "-" and number.kind == "num"

    def atom(self) -> Node:
        token = self.advance()
        if token.kind == "num":
            return Num(exact(token.text) if "." in token.text else int(token.text), token.text)
        if token.kind == "(":
            self.enter(token)
            node = self.expr()
            self.depth -= 1
            if self.current.kind != ")":
                raise ParseError(f"expected ')' but found {describe(self.current)}", self.current.column)
            self.advance()
            return node
        raise ParseError(f"expected a number but found {describe(token)}", token.column)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"nesting deeper than {MAX_DEPTH}", token.column)


def describe(token: Token) -> str:
    return "the end of the input" if token.kind == "end" else repr(token.text)


def parse(text: str) -> Node:
    """Parse an arithmetic expression; `ParseError` says where and what was expected."""
    parser = _Parser(tokenize(text))
    node = parser.expr()
    if parser.current.kind != "end":
        token = parser.current
        expected = "an operator" if token.kind in ("num", "(") else "an operator or the end"
        raise ParseError(f"expected {expected} but found {describe(token)}", token.column)
    return node


# ---------------------------------------------------------------- evaluation


# How fine a trace is: one step per operation, multi-digit products as partial products, or
# integer `+ - *` digit by digit with carries and borrows (`digit_steps`).
Granularity = Literal["op", "partial", "digit"]
GRANULARITIES: tuple[Granularity, ...] = typing.get_args(Granularity)


def check_granularity(granularity: str) -> Granularity:
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown trace granularity {granularity!r}; choose one of {', '.join(GRANULARITIES)}")
    return granularity


def evaluate(node: Node, *, granularity: Granularity = "op") -> tuple[Exact, list[Step]]:
    """The exact value and one `Step` per operation in post-order (the order a person works),
    each split as `granularity` says ("digit" ends each operation with its op-level step).
    Negating a compound value is the step `-1 * v` (never split); a negative literal costs no step.
    """
    granularity = check_granularity(granularity)
    steps: list[Step] = []

    def walk(n: Node) -> Exact:
        if type(n) is Num:
            return n.value
        if type(n) is Neg:
            return negate(walk(n.operand), steps)
        left, right = walk(n.left), walk(n.right)
        if n.op == "/" and right == 0:
            raise EvaluationError(f"division by zero in {to_text(n)}")
        return combine(n.op, left, right, steps, granularity)

    return walk(node), steps


def combine(op: str, left: Exact, right: Exact, steps: list[Step], granularity: Granularity = "op") -> Exact:
    """Record the step(s) for `left op right` and return its value (shared with the generator,
    which builds trees in the same post-order and so writes the same trace)."""
    if granularity == "digit" and op != "/":
        steps.extend(digit_steps(op, left, right))
        return steps[-1].result
    if granularity == "partial" and op == "*":
        steps.extend(partial_products(left, right))
        return steps[-1].result
    result = apply_op(op, left, right)  # operands are already canonical here: skip Step.compute's checks
    steps.append(Step(op, left, right, result))
    return result


def negate(value: Exact, steps: list[Step]) -> Exact:
    return combine("*", -1, value, steps)


def partial_products(left: Exact, right: Exact) -> list[Step]:
    """`36 * 18` → `36 * 10 = 360`, `36 * 8 = 288`, `360 + 288 = 648` (one step if nothing to split)."""
    if left.denominator != 1 or right.denominator != 1 or abs(right) < 10:
        return [Step.compute("*", left, right)]
    sign = -1 if right < 0 else 1
    digits = str(abs(right.numerator))
    parts = [sign * int(d) * 10 ** (len(digits) - i - 1) for i, d in enumerate(digits) if d != "0"]
    if len(parts) == 1:
        return [Step.compute("*", left, right)]
    steps = [Step.compute("*", left, p, kind="partial") for p in parts]
    total = steps[0].result
    for product in steps[1:len(parts)]:
        steps.append(Step.compute("+", total, product.result, kind="partial"))
        total = steps[-1].result
    return steps


# ---------------------------------------------------------------- digit-level steps
#
# Every step is a checked `Step`; a step's `state` is a short note ("carry 1", "borrow 1").
#   47 + 35:  7 + 5 = 12 (carry 1), 4 + 3 = 7, 7 + 1 = 8, 47 + 35 = 82
#   503 - 78: 13 - 8 = 5 (borrow 1), 7 + 1 = 8, 10 - 8 = 2 (borrow 1), 5 - 1 = 4, 503 - 78 = 425
#             (a borrow is paid back on the lower digit of the next column: "equal additions",
#             so no column ever goes below zero)
#   38 * 47:  8 * 7 = 56 (carry 5), 3 * 7 = 21, 21 + 5 = 26, 38 * 7 = 266,
#             8 * 4 = 32 (carry 3), 3 * 4 = 12, 12 + 3 = 15, 38 * 40 = 1520,
#             6 + 0 = 6, 6 + 2 = 8, 2 + 5 = 7, 266 + 1520 = 1786, 38 * 47 = 1786
#   7 - 12:   12 - 7 = 5, 7 - 12 = -5  (larger magnitude minus smaller, then the signed result)


def digit_steps(op: str, left: Exact, right: Exact) -> list[Step]:
    """The digit-level trace of one operation, ending with its op-level step `left op right = r`.

    Integer `+ - *` only: division, fractions, zeros, two single-digit operands and products of
    more than `MAX_DIGIT_PRODUCTS` digit pairs stay one step.
    Work is on magnitudes: column addition (carries), column subtraction of the smaller magnitude
    from the larger (borrows), long multiplication by the shorter operand's digits (each row
    single digit × single digit plus carries, shifted by place value, rows summed column-wise).
    When the signed operation differs from the magnitudes' one, its magnitude step comes first
    (`38 - 15 = 23`, then `15 - 38 = -23`).
    """
    if (op == "/" or type(left) is not int or type(right) is not int or not left or not right
            or (-10 < left < 10 and -10 < right < 10)
            or (op == "*" and len(str(left)) * len(str(right)) > MAX_DIGIT_PRODUCTS)):
        return [Step.compute(op, left, right)]
    steps: list[Step] = []
    x, y = abs(left), abs(right)
    if op == "*":
        magnitude = ("*", x, y)
        long_multiply(x, y, steps)
    elif (left > 0) == ((right > 0) if op == "+" else (right < 0)):  # same signs: magnitudes add
        magnitude = ("+", x, y)
        column_add(x, y, steps)
    else:
        big, small = (x, y) if x >= y else (y, x)
        magnitude = ("-", big, small)
        if big >= 20 or small >= 10 or big - small >= 10:  # else a subtraction fact: nothing to split
            column_subtract(big, small, steps)
    if magnitude != (op, left, right):
        steps.append(Step.compute(*magnitude, kind="magnitude"))
    steps.append(Step.compute(op, left, right))
    return steps


def _digits(n: int) -> list[int]:
    """Digits, ones first."""
    return [int(d) for d in reversed(str(n))]


def column_add(x: int, y: int, steps: list[Step]) -> int:
    """`x + y` (x, y >= 0) column by column, ones first: per column `a + b` then `+ carry`;
    a digit with nothing to add is copied (no step). Returns the sum."""
    xs, ys = _digits(x), _digits(y)
    carry = 0
    for i in range(max(len(xs), len(ys))):
        if i < len(xs) and i < len(ys):
            steps.append(Step.compute("+", xs[i], ys[i], kind="digit"))
            value = steps[-1].result
            if carry:
                steps.append(Step.compute("+", value, carry, kind="digit"))
                value = steps[-1].result
        else:
            value = xs[i] if i < len(xs) else ys[i]
            if not carry:
                continue
            steps.append(Step.compute("+", value, carry, kind="digit"))
            value = steps[-1].result
        carry = value // 10
        if carry:
            steps[-1].state = f"carry {carry}"
    return x + y


def column_subtract(x: int, y: int, steps: list[Step]) -> int:
    """`x - y` (x >= y >= 0) column by column, ones first: a borrow adds 10 to this column's top
    digit (`13 - 8 = 5`, note "borrow 1") and 1 to the next column's lower digit (`7 + 1 = 8`).
    A top digit with nothing below it and no borrow is copied (no step). Returns the difference."""
    xs, ys = _digits(x), _digits(y)
    borrow = 0
    for i, top in enumerate(xs):
        if i < len(ys):
            low = ys[i]
            if borrow:
                steps.append(Step.compute("+", low, borrow, kind="digit"))
                low = steps[-1].result
        elif borrow:
            low = borrow
        else:
            continue
        borrow = 1 if top < low else 0
        steps.append(Step.compute("-", top + 10 * borrow, low, kind="digit", state="borrow 1" if borrow else ""))
    return x - y


def long_multiply(x: int, y: int, steps: list[Step]) -> int:
    """`x * y` (x, y > 0) by the digits of the shorter operand (the right one on a tie): one row
    per non-zero digit, ones first: `t * d` per digit of the other operand, plus the carry
    (`21 + 5 = 26`), then the row shifted by place value (`38 * 40 = 1520`); each row after the
    first is added to the running total column-wise (`266 + 1520 = 1786`). With a single row the
    row step is the product itself and is left to the caller. Returns the product."""
    top, multiplier = (x, y) if len(str(y)) <= len(str(x)) else (y, x)
    tops, digits = _digits(top), _digits(multiplier)
    single_row = sum(1 for d in digits if d) == 1
    total = None
    for place, digit in enumerate(digits):
        if not digit:
            continue
        carry = 0
        for i, t in enumerate(tops):
            steps.append(Step.compute("*", t, digit, kind="digit"))
            value = steps[-1].result
            if carry:
                steps.append(Step.compute("+", value, carry, kind="digit"))
                value = steps[-1].result
            carry = value // 10
            if carry and i < len(tops) - 1:  # the last carry is the row's leading digits
                steps[-1].state = f"carry {carry}"
        if single_row:
            break
        row = Step.compute("*", top, digit * 10**place, kind="partial")
        steps.append(row)
        if total is None:
            total = row.result
            continue
        column_add(total, row.result, steps)
        steps.append(Step.compute("+", total, row.result, kind="partial"))
        total = steps[-1].result
    return x * y


def value_of(text: str) -> Exact:
    """Parse and evaluate; the convenience entry point for checkers."""
    return evaluate(parse(text))[0]


# ---------------------------------------------------------------- printing


def to_text(node: Node, *, spaced: bool = True) -> str:
    """Canonical text with the fewest parentheses that keep the same tree (`parse(to_text(t)) == t`)."""
    sep = " " if spaced else ""

    def show(n: Node) -> str:
        kind = type(n)
        if kind is Num:
            return n.text
        if kind is Neg:
            return f"-({show(n.operand)})"
        left, right = show(n.left), show(n.right)
        if type(n.left) is BinOp and PRECEDENCE[n.left.op] < PRECEDENCE[n.op]:
            left = f"({left})"
        # A right child of equal precedence needs brackets too: `a - (b - c)`, and for the
        # exact tree also `a + (b + c)`.
        if type(n.right) is BinOp and PRECEDENCE[n.right.op] <= PRECEDENCE[n.op]:
            right = f"({right})"
        return f"{left}{sep}{n.op}{sep}{right}"

    return show(node)


def depth(node_or_text: Node | str) -> int:
    """Parenthesis nesting depth of the canonical text."""
    text = node_or_text if isinstance(node_or_text, str) else to_text(node_or_text)
    level = deepest = 0
    for char in text.translate(_ONLY_PARENS):
        if char == "(":
            level += 1
            deepest = level if level > deepest else deepest
        else:
            level -= 1
    return deepest


_ONLY_PARENS = {ord(c): None for c in "0123456789.+-*/ "}


def literals(node: Node) -> list[Exact]:
    """The numbers written in the expression, left to right (signed literals keep their sign)."""
    if isinstance(node, Num):
        return [node.value]
    if isinstance(node, Neg):
        return literals(node.operand)
    return literals(node.left) + literals(node.right)


def number(value: Exact) -> Num:
    value = exact(value)
    return Num(value, format_number(value))


__all__ = [
    "BinOp", "EvaluationError", "Neg", "Node", "Num", "ParseError", "apply_op", "combine", "depth",
    "digit_steps", "evaluate", "GRANULARITIES", "Granularity", "check_granularity", "negate", "literals", "number", "parse", "partial_products", "to_text", "tokenize", "value_of",
]
