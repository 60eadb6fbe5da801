"""Conditions over a thread's state: the fields, the operators, and when a condition can turn.

A condition is checked against a ``ThreadView`` at a moment ``now``. Besides whether it holds,
the check says the next moment its truth can change with nothing but time passing (a clock
reaching a threshold), so the workers schedule an evaluation then instead of polling.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from chathooks.matching import MAX_MATCH_CHARS, words
from chathooks.triggers.grammar import Comparison, Value, compile_linear, parse, timed

ATTRIBUTE = "attributes."

# Each field's kind: "time" is a clock (seconds since a moment, growing with now), "number",
# "text", "choice" (text from a fixed set), "tags" (a set of tag names), "message" (the last customer
# message's text, which is tested as it arrives and never kept).
FIELDS: dict[str, str] = {
    "status": "choice",
    "seconds_since_customer_message": "time",
    "seconds_since_agent_message": "time",
    "seconds_since_start": "time",
    "last_message_author": "choice",
    "customer_message_text": "message",
    "customer_messages_in_a_row": "number",
    "messages": "number",
    "customer_email": "text",
    "tags": "tags",
    "rating": "number",
    "source": "choice",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "status": ("open", "ended"),
    "last_message_author": ("customer", "agent", "bot"),
    "source": ("livechat", "livechat_v2", "lhc"),  # the platforms with threads
}
# Built-in triggers' own fields, not for the rules file: the first customer message nobody has answered.
INTERNAL_FIELDS = {"seconds_waiting": "time"}

NUMERIC_OPS = ("gt", "gte", "lt", "lte")
LIST_OPS = ("contains_any", "in_list", "not_in_list")
OPS = ("eq", "neq", *NUMERIC_OPS, "empty", "notempty", "contains", *LIST_OPS)
# Which operators each kind of field takes (an attribute may hold text or a number: all of them).
OPS_FOR: dict[str, tuple[str, ...]] = {
    "time": (*NUMERIC_OPS, "empty", "notempty"),
    "number": ("eq", "neq", *NUMERIC_OPS, "empty", "notempty", "in_list", "not_in_list"),
    "text": ("eq", "neq", "empty", "notempty", "contains", *LIST_OPS),
    "choice": ("eq", "neq", "empty", "notempty", "in_list", "not_in_list"),
    "message": ("eq", "neq", "empty", "notempty", "contains", *LIST_OPS),
    "tags": ("empty", "notempty", "contains", "contains_any"),
    "attribute": OPS,
}
_PY = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_EXPR_PY = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq", "!=": "neq"}


def kind_of(name: str, internal: bool = False) -> str | None:
    """The kind of a field name (None: no such field); ``now`` is a time."""
    if name == "now":
        return "time"
    if name.startswith(ATTRIBUTE) and len(name) > len(ATTRIBUTE):
        return "attribute"
    return FIELDS.get(name) or (INTERNAL_FIELDS.get(name) if internal else None)


@dataclass(frozen=True, slots=True)
class ThreadView:
    """A thread's state as the conditions see it. Times are Unix seconds, by the events' own clocks."""

    status: str = "open"
    started: float | None = None
    last_customer: float | None = None
    last_agent: float | None = None
    waiting_since: float | None = None  # the first customer message since the last agent reply
    last_author: str | None = None
    message_facts: frozenset[str] = frozenset()  # the tests the last customer message passed (their ids)
    has_customer_message: bool = False
    in_a_row: int = 0
    messages: int = 0
    customer_email: str | None = None
    tags: frozenset[str] = frozenset()
    rating: int | None = None
    source: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


_CLOCKS = {"seconds_since_customer_message": "last_customer", "seconds_since_agent_message": "last_agent",
           "seconds_since_start": "started", "seconds_waiting": "waiting_since"}
_VALUES = {"status": "status", "last_message_author": "last_author", "customer_email": "customer_email",
           "customer_messages_in_a_row": "in_a_row", "messages": "messages", "rating": "rating", "source": "source",
           "tags": "tags"}


class Truth(NamedTuple):
    """Whether a condition holds now, and the next moment (> now) its truth may change with time alone."""

    holds: bool
    turns_at: float | None = None


TRUE, FALSE = Truth(True), Truth(False)  # the answers of tests time does not change (most of them)


_NUMERIC_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def number(value: Any) -> float | None:
    """A finite number from a number or decimal text (platforms send "12" as often as 12); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not _NUMERIC_TEXT.fullmatch(value):  # not "inf", "nan", "1e999" or "1_000"
            return None
    if isinstance(value, int | float | str):
        try:
            n = float(value)
        except (OverflowError, ValueError):
            return None
        return n if math.isfinite(n) else None
    return None


def fold(value: Any) -> str:
    """A text as compared: stripped, case folded."""
    return str(value).strip().casefold()


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, frozenset | list | tuple) and not value)


@dataclass(frozen=True, slots=True)
class FieldTest:
    """``{field, op, value}``."""

    field: str
    op: str
    value: Any = None
    kind: str = "attribute"
    id: str = ""  # stable across rule edits: a message's test results are kept by it
    _match: Callable[[Any], bool] = field(default=lambda v: False, repr=False, compare=False)
    # ``check``, specialised to this field, operator and value when built (it runs for every event)
    _check: Callable[[ThreadView, float], Truth] = field(default=lambda view, now: FALSE, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind != "time":  # a clock is compared with its moment instead (``_moment``)
            object.__setattr__(self, "_match", self._matcher())
        object.__setattr__(self, "_check", self._checker())

    @classmethod
    def build(cls, name: str, op: str, value: Any, kind: str) -> FieldTest:
        return cls(name, op, value, kind, hashlib.blake2b(repr((name, op, value)).encode(), digest_size=5).hexdigest())

    def _checker(self) -> Callable[[ThreadView, float], Truth]:
        op, kind = self.op, self.kind
        if kind == "message":
            test_id = self.id
            if op == "empty":
                return lambda view, now: _truth(not view.has_customer_message or test_id in view.message_facts)
            return lambda view, now: _truth(view.has_customer_message and test_id in view.message_facts)
        if kind == "time":
            clock = operator.attrgetter(_CLOCKS[self.field])
            if op in ("empty", "notempty"):
                want = op == "empty"
                return lambda view, now: _truth((clock(view) is None) == want)
            moment, after = _MOMENTS[op], float(self.value)

            def timed(view: ThreadView, now: float) -> Truth:
                since = clock(view)
                return FALSE if since is None else moment(now, since + after)  # when the clock reaches the value
            return timed
        read, match = _reader(self.field), self._match
        if op in ("empty", "notempty"):
            present = op == "notempty"
            return lambda view, now: _truth(_empty(read(view)) != present)

        def valued(view: ThreadView, now: float) -> Truth:
            value = read(view)
            return FALSE if _empty(value) else _truth(match(value))
        return valued

    def _matcher(self) -> Callable[[Any], bool]:
        """A test of a present value (text or number) against this test's operator and value."""
        op, value = self.op, self.value
        if op in ("empty", "notempty"):
            return lambda v: _empty(v) == (op == "empty")
        if self.kind == "choice" and op in ("eq", "neq", "in_list", "not_in_list"):
            # A choice in the state is one of CHOICES as it is (lowercase): the rule's values folded once, here.
            wanted, want = frozenset(map(fold, value if op.endswith("list") else (value,))), op in ("eq", "in_list")
            return lambda v: (v in wanted) == want
        if op in _PY:
            limit, compare = float(value), _PY[op]
            if self.kind == "number":  # the state's counts and rating: ints when present
                return lambda v: type(v) is int and compare(v, limit)
            return lambda v: (n := number(v)) is not None and compare(n, limit)
        if op in ("eq", "neq"):
            want, target, folded = op == "eq", number(value), fold(value)
            if target is None:
                return lambda v: (fold(v) == folded) == want
            # 5, "5" and "5.0" are one number; a value that is no number is compared as text
            return lambda v: ((n == target) if (n := number(v)) is not None else fold(v) == folded) == want
        if op in ("in_list", "not_in_list"):
            want, folded = op == "in_list", {fold(v) for v in value}
            numbers = {n for n in map(number, value) if n is not None}
            return lambda v: (fold(v) in folded or number(v) in numbers) == want
        if self.kind == "tags":
            wanted = {fold(v) for v in ([value] if op == "contains" else value)}
            return lambda tags: any(fold(t) in wanted for t in tags)
        pattern = words([value] if op == "contains" else value)
        return lambda v: pattern.search(str(v)) is not None

    def matches_text(self, text: str) -> bool:
        """For tests of the last customer message: decided once, when it arrives (on as much as tagging reads)."""
        text = text[:MAX_MATCH_CHARS]
        if self.op == "empty":
            return not text.strip()
        if self.op == "notempty":
            return bool(text.strip())
        return self._match(text)

    def check(self, view: ThreadView, now: float) -> Truth:
        return self._check(view, now)


@dataclass(frozen=True, slots=True)
class ExprTest:
    """``{expr: "…"}``, parsed at start."""

    expr: str
    tree: Comparison
    _sides: tuple[Value, Value] = field(default=(lambda view: None, lambda view: None), repr=False, compare=False)

    @classmethod
    def build(cls, text: str, internal: bool = False) -> ExprTest:
        tree = parse(text, lambda name: kind_of(name, internal))

        def leaf(name: str) -> Value:
            if name == "now":
                return lambda view: (1.0, 0.0)
            if kind_of(name, internal) == "time":
                clock = operator.attrgetter(_CLOCKS[name])
                return lambda view: None if (since := clock(view)) is None else (1.0, -since)  # now - since
            read = _reader(name)
            return lambda view: None if (n := number(read(view))) is None else (0.0, n)

        return cls(text, tree, (compile_linear(tree.left, leaf), compile_linear(tree.right, leaf)))

    def check(self, view: ThreadView, now: float) -> Truth:
        left, right = self._sides[0](view), self._sides[1](view)
        if left is None or right is None:
            return FALSE
        a, b = left[0] - right[0], left[1] - right[1]  # the comparison is of a * now + b with 0
        op = _EXPR_PY[self.tree.op]
        if a == 0:
            return _truth(b == 0 if op == "eq" else b != 0 if op == "neq" else _PY[op](b, 0.0))
        # a * now + b against 0 is now against the root, the comparison turned round when a < 0
        return _MOMENTS[op if a > 0 else _TURNED[op]](now, -b / a)


_TURNED = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}
STEP = 1e-6  # the scheduler's resolution: "just after" a moment


def _moment(op: str) -> Callable[[float, float], Truth]:
    """``now op moment``, and when that turns: at the moment (gte, lt) or just after it (gt, lte)."""
    compare, step = _PY[op], 0.0 if op in ("gte", "lt") else STEP

    def against(now: float, moment: float) -> Truth:
        turns = moment + step
        return Truth(compare(now, moment), turns if turns > now else None)
    return against


_MOMENTS = {op: _moment(op) for op in NUMERIC_OPS}


def _reader(name: str) -> Callable[[ThreadView], Any]:
    """What reads field ``name`` (not a clock) of a view."""
    if name.startswith(ATTRIBUTE):
        attribute = name[len(ATTRIBUTE):]
        return lambda view: view.attributes.get(attribute)
    return operator.attrgetter(_VALUES[name])


Test = FieldTest | ExprTest


def _truth(holds: bool) -> Truth:
    return TRUE if holds else FALSE


Check = Callable[[ThreadView, float], Truth]


def all_of(tests: tuple[Test, ...]) -> Check:
    """An AND-list's check: holds when every test does; turns at the nearest moment any test turns.

    While a test that only an event can change is false, time alone changes nothing: those are checked
    first, and the first false one is the answer.
    """
    checks = tuple(t._check if isinstance(t, FieldTest) else t.check for t in sorted(tests, key=_timed))
    if len(checks) == 1:
        return checks[0]

    def check(view: ThreadView, now: float) -> Truth:
        holds, turns = True, None
        for one in checks:
            test_holds, test_turns = one(view, now)
            if test_turns is None:
                if not test_holds:
                    return FALSE
            else:
                holds = holds and test_holds
                if turns is None or test_turns < turns:
                    turns = test_turns
        return _truth(holds) if turns is None else Truth(holds, turns)
    return check


def any_of(groups: tuple[tuple[Test, ...], ...]) -> Check:
    """An OR of AND-lists' check."""
    checks = tuple(all_of(group) for group in groups)
    if len(checks) == 1:
        return checks[0]

    def check(view: ThreadView, now: float) -> Truth:
        holds, turns = False, None
        for one in checks:
            group_holds, group_turns = one(view, now)
            holds = holds or group_holds
            if group_turns is not None and (turns is None or group_turns < turns):
                turns = group_turns
        return _truth(holds) if turns is None else Truth(holds, turns)
    return check


def _timed(test: Test) -> bool:
    """Whether time alone may change the test's truth (an event-only test is cheaper to rule out first)."""
    if isinstance(test, FieldTest):
        return test.kind == "time"
    return timed(test.tree, lambda name: kind_of(name, internal=True))
