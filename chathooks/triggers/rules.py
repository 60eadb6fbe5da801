"""The ``triggers`` section of the rules file, and the nudge as the first built-in trigger."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates

from chathooks.triggers.conditions import (
    CHOICES, NUMERIC_OPS, OPS, OPS_FOR, Check, ExprTest, FieldTest, Test, ThreadView, Truth, any_of, fold, kind_of,
)
from chathooks.triggers.grammar import ExprError, names

Repeat = Literal["window", "once"]
NUDGE = "nudge"  # the built-in trigger's name, reserved


@dataclass(frozen=True, slots=True)
class Action:
    kind: Literal["message", "tag"]
    value: str


@dataclass(frozen=True, slots=True)
class Trigger:
    """Fire ``actions`` when ``when`` (an OR of AND-lists) holds: once per window, or once per thread."""

    name: str
    when: tuple[tuple[Test, ...], ...]
    actions: tuple[Action, ...]
    repeat: Repeat = "window"
    condition: Check = field(init=False, repr=False, compare=False)  # ``when``, compiled

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", any_of(self.when))

    def check(self, view: ThreadView, now: float) -> Truth:
        return self.condition(view, now)


def nudge_trigger(after_seconds: int, message: str) -> Trigger:
    """The agent-silence nudge: a customer has waited ``after_seconds`` since the first unanswered message."""
    waiting = FieldTest.build("seconds_waiting", "gte", after_seconds, "time")
    is_open = FieldTest.build("status", "eq", "open", "choice")
    return Trigger(NUDGE, ((is_open, waiting),), (Action("message", message),))


@dataclass(frozen=True, slots=True)
class TriggerSet:
    """The triggers in force, and what their evaluation needs kept of each thread."""

    triggers: tuple[Trigger, ...] = ()
    message_tests: tuple[FieldTest, ...] = field(init=False, default=())  # decided as each customer message arrives
    checks: tuple[tuple[str, bool, Check], ...] = field(init=False, default=())  # name, once per thread?, check
    attributes: frozenset[str] = field(init=False, default=frozenset())  # the platform attributes read
    reads_tags: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        tests = [t for trigger in self.triggers for group in trigger.when for t in group]
        read = {t.field for t in tests if isinstance(t, FieldTest)}
        read |= {n for t in tests if isinstance(t, ExprTest) for n in names(t.tree)}
        message = {t.id: t for t in tests if isinstance(t, FieldTest) and t.kind == "message"}
        object.__setattr__(self, "message_tests", tuple(message.values()))
        object.__setattr__(self, "checks", tuple((t.name, t.repeat == "once", t.condition) for t in self.triggers))
        attributes = frozenset(n.partition(".")[2] for n in read if kind_of(n) == "attribute")
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "reads_tags", "tags" in read)

    def __bool__(self) -> bool:
        return bool(self.triggers)

    def message_facts(self, text: str) -> list[str]:
        """The ids of the message tests ``text`` passes."""
        return [t.id for t in self.message_tests if t.matches_text(text)]


# --- the rules file ---------------------------------------------------------------------------

def _scalar(value: Any) -> bool:
    return (isinstance(value, str) or _number(value))


def _number(value: Any) -> bool:
    """A finite number that fits a float (not true, not .nan, not 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _field_test(item: dict[str, Any]) -> FieldTest:
    unknown = set(item) - {"field", "op", "value"}
    if unknown:
        raise ValidationError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name, op = item.get("field"), item.get("op")
    kind = kind_of(name) if isinstance(name, str) else None
    if kind is None or name == "now":
        raise ValidationError(f"unknown field {name!r}")
    if op not in OPS:
        raise ValidationError(f"unknown operator {op!r} (one of {', '.join(OPS)})")
    if op not in OPS_FOR[kind]:
        raise ValidationError(f"{name} does not take {op} (it takes {', '.join(OPS_FOR[kind])})")
    value = item.get("value")
    if op in ("empty", "notempty"):
        if value is not None:
            raise ValidationError(f"{op} takes no value")
    elif op in NUMERIC_OPS:
        if not _number(value):
            raise ValidationError(f"{op} needs a number as value")
    elif op in ("eq", "neq", "contains"):
        if not _scalar(value) or (isinstance(value, str) and not value.strip()):
            raise ValidationError(f"{op} needs a text or number as value")
        if kind == "number" and not _number(value):
            raise ValidationError(f"{name} is a number: {op} needs a number as value")
        if op == "contains" and not isinstance(value, str):
            raise ValidationError("contains needs a text as value")
    else:
        if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
            raise ValidationError(f"{op} needs a non-empty list of texts or numbers as value")
        if op == "contains_any" and not all(isinstance(v, str) and v.strip() for v in value):
            raise ValidationError("contains_any needs a list of words or phrases")
        value = tuple(value)
    if name in CHOICES and op in ("eq", "neq", "in_list", "not_in_list"):
        bad = [v for v in (value if isinstance(value, tuple) else (value,)) if fold(v) not in CHOICES[name]]
        if bad:
            raise ValidationError(f"{name} is one of {', '.join(CHOICES[name])}, not {bad[0]!r}")
    return FieldTest.build(name, op, value, kind)


def _test(item: Any) -> Test:
    if not isinstance(item, dict):
        raise ValidationError("a condition is a mapping: {field, op, value} or {expr}")
    if "expr" in item:
        if set(item) != {"expr"}:
            raise ValidationError("an expr condition has no other keys")
        try:
            return ExprTest.build(item["expr"])
        except ExprError as e:
            raise ValidationError(f"expr {item['expr']!r}: {e}") from e
    return _field_test(item)


def _and_list(items: Any, where: str) -> tuple[Test, ...]:
    if not isinstance(items, list) or not items:
        raise ValidationError(f"{where}must be a non-empty list of conditions")
    tests = []
    for i, item in enumerate(items):
        try:
            tests.append(_test(item))
        except ValidationError as e:
            raise ValidationError(f"{where}[{i}]: {'; '.join(map(str, e.messages))}") from e
    return tuple(tests)


class _When(fields.Field):
    """A list (AND of its items) or ``{any: [list, list, …]}`` (OR of AND-lists); nothing deeper."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[tuple[Test, ...], ...]:
        if isinstance(value, dict):
            if set(value) != {"any"}:
                raise ValidationError("a mapping here holds only `any`: a list of condition lists")
            groups = value["any"]
            if not isinstance(groups, list) or not groups:
                raise ValidationError("any: must be a non-empty list of condition lists")
            return tuple(_and_list(g, f"any[{i}]") for i, g in enumerate(groups))
        return (_and_list(value, ""),)


class _ActionSchema(Schema):
    class Meta:
        unknown = RAISE

    message = fields.String(validate=validate.Length(min=1))
    tag = fields.String(validate=validate.Length(min=1))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Action:
        if len(data) != 1 or not next(iter(data.values())).strip():
            raise ValidationError("an action is one of {message: text} or {tag: name}")
        ((kind, value),) = data.items()
        return Action(kind, value)


class TriggerSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1))
    when = _When(required=True)
    actions = fields.List(fields.Nested(_ActionSchema), required=True, validate=validate.Length(min=1))
    repeat = fields.String(validate=validate.OneOf(("window", "once")))

    @validates("name")
    def _not_reserved(self, value: str, **kwargs: Any) -> None:
        if value.strip() != value or not value:
            raise ValidationError("must not be blank or padded")
        if "|" in value:
            raise ValidationError("must not contain '|'")
        if value == NUDGE:
            raise ValidationError(f"{NUDGE!r} is the built-in nudge's name (the nudge section)")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Trigger:
        return Trigger(data["name"], data["when"], tuple(data["actions"]), data.get("repeat", "window"))


def unique_names(triggers: list[Trigger]) -> None:
    seen: set[str] = set()
    for trigger in triggers:
        if trigger.name in seen:
            raise ValidationError(f"two triggers are named {trigger.name!r}: names must be unique")
        seen.add(trigger.name)
