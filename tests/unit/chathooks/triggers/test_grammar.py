"""The expr grammar: what it parses, what it refuses and why, and that nothing outside it gets through."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chathooks.triggers.conditions import FIELDS, kind_of
from chathooks.triggers.grammar import (
    MAX_DEPTH, MAX_LENGTH, BinOp, Comparison, ExprError, Name, Neg, Num, compile_linear, names, parse,
)


def parsed(text: str) -> Comparison:
    return parse(text, kind_of)


def linear(node, values):  # type: ignore[no-untyped-def]
    """The node's value, its names' values given (None: no value)."""
    return compile_linear(node, lambda name: lambda view: values.get(name))(None)


def value(text: str, now: float = 0.0, **fields: float) -> tuple[float, float] | None:
    """Both sides of the comparison as ``a * now + b``, the fields' values given (clocks count from 0)."""
    tree = parsed(text)
    values = {"now": (1.0, 0.0), **{k: ((1.0, -v) if kind_of(k) == "time" else (0.0, v)) for k, v in fields.items()}}
    left, right = linear(tree.left, values), linear(tree.right, values)
    assert left is not None and right is not None
    return left[0] - right[0], left[1] - right[1]


def test_the_spec_example_parses_into_a_small_tree():
    assert parsed("seconds_since_start > 1.5 * 600") == Comparison(
        ">", Name("seconds_since_start"), BinOp("*", Num(1.5), Num(600.0)))


@pytest.mark.parametrize(("text", "expected"), [
    ("1 + 2 * 3 == 7", (0.0, 0.0)),  # * before +
    ("(1 + 2) * 3 == 9", (0.0, 0.0)),
    ("10 - 4 - 3 == 3", (0.0, 0.0)),  # left to right
    ("12 / 4 / 3 == 1", (0.0, 0.0)),
    ("7 % 4 == 3", (0.0, 0.0)),
    ("-2 * -3 == 6", (0.0, 0.0)),
    ("--1 == 1", (0.0, 0.0)),
    (".5 + 0.5 == 1", (0.0, 0.0)),
])
def test_arithmetic_follows_the_usual_precedence(text, expected):
    assert value(text) == expected


def test_a_clock_is_now_minus_its_moment_so_a_comparison_solves_for_a_moment():
    # seconds_since_customer_message (since 100) >= 25  →  now - 100 - 25 >= 0
    assert value("seconds_since_customer_message >= 25", seconds_since_customer_message=100) == (1.0, -125.0)
    # now - attributes.last_user_msg_time > 60, the LHC idiom
    assert value("now - attributes.last_user_msg_time > 60", **{"attributes.last_user_msg_time": 1000}) == (
        1.0, -1060.0)
    assert value("2 * seconds_since_start < 600", seconds_since_start=50) == (2.0, -700.0)


def test_a_division_by_zero_has_no_value():
    tree = parsed("messages / 0 > 1")
    assert linear(tree.left, {"messages": (0.0, 3.0)}) is None
    assert linear(parsed("messages % 0 > 1").left, {"messages": (0.0, 3.0)}) is None


def test_a_name_without_a_value_leaves_the_side_without_one():
    assert linear(parsed("messages + 1 > 1").left, {"messages": None}) is None


@pytest.mark.parametrize(("text", "reason"), [
    ("", "is empty"),
    ("   ", "is empty"),
    ("seconds_since_start", "needs one comparison"),
    ("1 < 2 < 3", "only one comparison"),
    ("messages > ", "unexpected end"),
    ("(messages > 1", "expected ')'"),
    ("(1 + 2 > 1", "expected ')'"),
    ("messages >> 1", "unexpected '>'"),
    ("messages => 1", "unexpected"),
    ("messages = 1", "unexpected character '='"),
    ("messages ** 2 > 1", "unexpected '*'"),
    ("__import__('os').system('id') > 0", "unexpected character"),
    ("open > 1", "unknown field 'open'"),
    ("seconds_since_start.real > 1", "unknown field"),
    ("attributes.x.y > 1", "unexpected"),
    ("status > 1", "status is not a number"),
    ("customer_email == 1", "customer_email is not a number"),
    ("tags > 1", "tags is not a number"),
    ("seconds_waiting > 1", "unknown field"),  # the built-in nudge's field is not for the rules file
    ("messages if 1 else 2 > 1", "unexpected"),
    ("lambda: 1 > 0", "unexpected character ':'"),
    ("[1] > 0", "unexpected character '['"),
    ('"1" > 0', "unexpected character '\"'"),
    ("1e3 > 0", "unexpected 'e3'"),
    ("seconds_since_start * seconds_since_start > 1", "two times multiplied"),
    ("messages / seconds_since_start > 1", "division by a time"),
    ("seconds_since_start % 60 < 5", "% of a time"),
    ("now % 60 < 5", "% of a time"),
    ("seconds_since_start == 600", "holds for an instant only"),
    ("now != 1", "holds for an instant only"),
])
def test_what_is_outside_the_grammar_is_refused_with_a_reason(text, reason):
    with pytest.raises(ExprError, match=re.escape(reason)):
        parsed(text)


def test_limits_on_length_and_depth():
    with pytest.raises(ExprError, match=f"longer than {MAX_LENGTH}"):
        parsed("messages > " + "1+" * MAX_LENGTH + "1")
    with pytest.raises(ExprError, match=f"nested deeper than {MAX_DEPTH}"):
        parsed("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1) + " > 0")
    with pytest.raises(ExprError, match="nested deeper"):
        parsed("-" * (MAX_DEPTH + 1) + "1 > 0")
    parsed("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH + " > 0")


def test_a_non_string_is_refused():
    with pytest.raises(ExprError, match="must be a string"):
        parse(12, kind_of)  # type: ignore[arg-type]


NUMERIC = sorted(n for n, k in FIELDS.items() if k in ("time", "number")) + ["now", "attributes.wait_time"]
ALPHABET = st.sampled_from([*NUMERIC, "status", "x", "__class__", "(", ")", "+", "-", "*", "/", "%", "<", "<=",
                            ">", ">=", "==", "!=", "=", "1", "2.5", ".", " ", "'", "[", "]", ",", "**", "not"])


def _allowed(node) -> bool:
    if isinstance(node, Num):
        return isinstance(node.value, float)
    if isinstance(node, Name):
        return node.name in NUMERIC or node.name.startswith("attributes.")
    if isinstance(node, Neg):
        return _allowed(node.operand)
    return isinstance(node, BinOp) and node.op in "+-*/%" and _allowed(node.left) and _allowed(node.right)


def _check(text: str) -> None:
    try:
        tree = parsed(text)
    except ExprError as e:
        assert str(e)  # refused with a message, and nothing else raised
        return
    assert isinstance(tree, Comparison) and tree.op in ("<", "<=", ">", ">=", "==", "!=")
    assert _allowed(tree.left) and _allowed(tree.right)
    assert names(tree) <= set(NUMERIC) | {n for n in names(tree) if n.startswith("attributes.")}


@settings(max_examples=800, deadline=None)
@given(st.text(max_size=80))
@example("__import__('os').system('true') > 0")
@example("().__class__.__bases__[0] > 0")
def test_any_text_parses_to_the_grammar_or_is_refused_with_a_message(text):
    _check(text)


@settings(max_examples=800, deadline=None)
@given(st.lists(ALPHABET, max_size=25).map(" ".join))
def test_near_miss_token_soups_parse_to_the_grammar_or_are_refused(text):
    _check(text)


def test_numbers_stay_finite():
    with pytest.raises(ExprError, match="number too large"):
        parsed("messages > " + "9" * 400)
    tree = parsed("attributes.x * 1000000 * 1000000 % 7 > 1")
    huge = {"attributes.x": (0.0, 1e300)}
    assert linear(tree.left, huge) is None  # overflow: no value, never an exception
