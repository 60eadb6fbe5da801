"""The ``expr`` grammar of triggers: arithmetic over a thread's numeric fields, never ``eval``.

    comparison := sum ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/" | "%") unary)*
    unary      := "-" unary | atom
    atom       := number | name | "(" sum ")"

A name is a numeric field of the thread's state (``seconds_since_start``, ``attributes.wait_time``)
or ``now``. An expression is parsed once, at start, into a small tree; its value is then
computed as ``a * now + b``, so the moment a comparison turns can be solved for rather than
polled. That needs time to enter linearly: two times multiplied, or a time divided by or taken
modulo, is refused at start, as is ``==`` or ``!=`` on a time (true for an instant only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 500
MAX_DEPTH = 32
COMPARISONS = ("<=", ">=", "==", "!=", "<", ">")

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)"
                    r"|(?P<op><=|>=|==|!=|[-+*/%()<>]))")


class ExprError(ValueError):
    """An expression outside the grammar, or one whose names or types do not fit."""


# --- the tree ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Node


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * / %
    left: Node
    right: Node


Node = Num | Name | Neg | BinOp


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str  # < <= > >= == !=
    left: Node
    right: Node


# --- parsing ----------------------------------------------------------------------------------

def parse(text: str, kind_of: Callable[[str], str | None]) -> Comparison:
    """Parse ``text`` into a Comparison; raise ExprError saying what is wrong and where.

    ``kind_of(name)`` tells what a name is: ``"time"`` (changes with the clock: ``now``, the
    ``seconds_since_*`` clocks), ``"number"``, ``"attribute"`` (a number if the platform sent one),
    another kind (not allowed in arithmetic) or None (unknown).
    """
    if not isinstance(text, str):
        raise ExprError("must be a string")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"longer than {MAX_LENGTH} characters")
    tokens = _tokens(text)
    if not tokens:
        raise ExprError("is empty")
    parser = _Parser(tokens, kind_of)
    result = parser.comparison()
    if parser.peek() is not None:
        raise ExprError(f"unexpected {parser.peek()!r} after the comparison")
    return result


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExprError(f"unexpected character {text[pos:].lstrip()[0]!r} at position {pos + 1}")
        tokens.append(match.group(match.lastgroup))  # type: ignore[arg-type]
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], kind_of: Callable[[str], str | None]) -> None:
        self._tokens = tokens
        self._at = 0
        self._kind_of = kind_of
        self._depth = 0

    def peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExprError("unexpected end of expression")
        self._at += 1
        return token

    def comparison(self) -> Comparison:
        left = self._sum()
        op = self.peek()
        if op not in COMPARISONS:
            raise ExprError("needs one comparison (< <= > >= == !=)" if op is None else f"unexpected {op!r}")
        self._take()
        right = self._sum()
        if self.peek() in COMPARISONS:
            raise ExprError("only one comparison is allowed")
        if op in ("==", "!=") and (timed(left, self._kind_of) or timed(right, self._kind_of)):
            raise ExprError(f"{op} on a time holds for an instant only: compare with < <= > >=")
        return Comparison(op, left, right)

    def _sum(self) -> Node:
        node = self._product()
        while self.peek() in ("+", "-"):
            node = BinOp(self._take(), node, self._product())
        return node

    def _product(self) -> Node:
        node = self._unary()
        while self.peek() in ("*", "/", "%"):
            op = self._take()
            right = self._unary()
            left_timed, right_timed = timed(node, self._kind_of), timed(right, self._kind_of)
            if op == "*" and left_timed and right_timed:
                raise ExprError("two times multiplied: a time may only be scaled by a number")
            if op == "/" and right_timed:
                raise ExprError("division by a time: a time may only be divided by a number")
            if op == "%" and (left_timed or right_timed):
                raise ExprError("% of a time: use % on numbers only")
            node = BinOp(op, node, right)
        return node

    def _unary(self) -> Node:
        if self.peek() == "-":
            self._take()
            return Neg(self._nested(self._unary))
        return self._atom()

    def _nested(self, rule: Callable[[], Node]) -> Node:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExprError(f"nested deeper than {MAX_DEPTH}")
        try:
            return rule()
        finally:
            self._depth -= 1

    def _atom(self) -> Node:
        token = self._take()
        if token == "(":
            node = self._nested(self._sum)
            if self._take() != ")":
                raise ExprError("expected ')'")
            return node
        if token[0].isdigit() or token[0] == ".":
            value = float(token)
            if not math.isfinite(value):
                raise ExprError(f"number too large: {token[:20]}…")
            return Num(value)
        if token[0].isalpha() or token[0] == "_":
            kind = self._kind_of(token)
            if kind is None:
                raise ExprError(f"unknown field {token!r}")
            if kind not in ("time", "number", "attribute"):
                raise ExprError(f"{token} is not a number")
            return Name(token)
        raise ExprError(f"unexpected {token!r}")


def timed(node: Node | Comparison, kind_of: Callable[[str], str | None]) -> bool:
    """Whether the node's value changes with the clock (a name of kind time in it)."""
    if isinstance(node, Name):
        return kind_of(node.name) == "time"
    if isinstance(node, Neg):
        return timed(node.operand, kind_of)
    if isinstance(node, BinOp | Comparison):
        return timed(node.left, kind_of) or timed(node.right, kind_of)
    return False


# --- values ----------------------------------------------------------------------------------

Linear = tuple[float, float]  # (a, b): the value a * now + b
Value = Callable[[Any], "Linear | None"]  # a value of a thread's state (its view), as a Linear


def compile_linear(node: Node, leaf: Callable[[str], Value]) -> Value:
    """The node's value as ``a * now + b``, a function of a thread's state built once: ``leaf(name)`` reads a
    name's. The value is None when a name has none or a division is by zero."""
    if isinstance(node, Num):
        constant = (0.0, node.value)
        return lambda _: constant
    if isinstance(node, Name):
        return leaf(node.name)
    if isinstance(node, Neg):
        inner = compile_linear(node.operand, leaf)

        def negated(view: Any) -> Linear | None:
            value = inner(view)
            return None if value is None else (-value[0], -value[1])
        return negated
    left, right, combine = compile_linear(node.left, leaf), compile_linear(node.right, leaf), _COMBINE[node.op]

    def combined(view: Any) -> Linear | None:
        first = left(view)
        if first is None:
            return None
        second = right(view)
        if second is None or not all(map(math.isfinite, (*first, *second))):
            return None
        return combine(first, second)
    if not names(node):  # no name in it: its value reads no state, so it is computed here, once
        constant = combined(None)
        return lambda _: constant
    return combined


def _product(x: Linear, y: Linear) -> Linear | None:
    (a, b), (c, d) = x, y
    return _finite(a * d + c * b, b * d)  # the grammar lets at most one side carry time


def _quotient(x: Linear, y: Linear) -> Linear | None:
    (a, b), d = x, y[1]  # / and %: the right side carries no time
    return None if d == 0 else _finite(a / d, b / d)


def _remainder(x: Linear, y: Linear) -> Linear | None:
    return None if y[1] == 0 else _finite(0.0, math.fmod(x[1], y[1]))


_COMBINE: dict[str, Callable[[Linear, Linear], Linear | None]] = {
    "+": lambda x, y: _finite(x[0] + y[0], x[1] + y[1]),
    "-": lambda x, y: _finite(x[0] - y[0], x[1] - y[1]),
    "*": _product,
    "/": _quotient,
    "%": _remainder,
}


def _finite(a: float, b: float) -> Linear | None:
    return (a, b) if math.isfinite(a) and math.isfinite(b) else None


def names(node: Node | Comparison) -> set[str]:
    """Every name the expression reads."""
    if isinstance(node, Name):
        return {node.name}
    if isinstance(node, Neg):
        return names(node.operand)
    if isinstance(node, BinOp | Comparison):
        return names(node.left) | names(node.right)
    return set()
