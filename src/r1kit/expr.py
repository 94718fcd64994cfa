"""The math compiler's front and middle: text → tokens → AST → exact steps.

A hand-written tokenizer and recursive-descent parser (never `eval`) for `+ - * /`, parentheses,
unary minus, negative literals, integers and decimals. Evaluation walks the tree in post-order
and emits one `Step` per operation with exact `Fraction` results. Input size, literal length and
nesting depth are bounded so that untrusted text can't exhaust time or memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from r1kit.errors import R1kitError
from r1kit.numbers import Exact, exact, format_number
from r1kit.problem import Step, apply_op

MAX_EXPRESSION_CHARS = 2_000
MAX_LITERAL_DIGITS = 30
MAX_DEPTH = 64
MAX_OPERATORS = 256  # evaluation and printing recurse over the tree: keep it far from Python's limit


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


def evaluate(node: Node, *, fine: bool = False) -> tuple[Exact, list[Step]]:
    """The exact value and one `Step` per operation in post-order (the order a person works).

    `fine=True` splits a multi-digit integer multiplication into partial products.
    Negating a compound value is the step `-1 * v`; a negative literal costs no step.
    """
    steps: list[Step] = []

    def walk(n: Node) -> Exact:
        if type(n) is Num:
            return n.value
        if type(n) is Neg:
            return negate(walk(n.operand), steps)
        left, right = walk(n.left), walk(n.right)
        if n.op == "/" and right == 0:
            raise EvaluationError(f"division by zero in {to_text(n)}")
        return combine(n.op, left, right, steps, fine)

    return walk(node), steps


def combine(op: str, left: Exact, right: Exact, steps: list[Step], fine: bool = False) -> Exact:
    """Record the step(s) for `left op right` and return its value (shared with the generator,
    which builds trees in the same post-order and so writes the same trace)."""
    if fine and op == "*":
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
    "evaluate", "negate", "literals", "number", "parse", "partial_products", "to_text", "tokenize", "value_of",
]
