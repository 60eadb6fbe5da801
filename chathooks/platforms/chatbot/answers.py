"""The rules' ``chatbot`` section: validated against ChatBot's response types and limits at start,
and how a webhook block's call is answered from it (first matching rule wins).

Response types and limits, as ChatBot's webhooks page gives them (field names beyond ``text`` are
our reading of it, and stricter where it is silent, so an answer ChatBot would refuse is never sent):

| type | fields |
|---|---|
| ``text`` | ``message`` 1–1024 |
| ``randomText`` | ``messages``: 1–20 of 1–1024 |
| ``image`` | ``image``: an http(s) URL up to 2048 |
| ``quickReplies`` | ``title`` 1–640, ``buttons``: 1–13 ``postback``/``goto`` buttons |
| ``buttons`` | ``title`` 1–640, ``buttons``: 1–5 buttons of any type |
| ``cards`` | ``cards``: 1–10 of ``title`` 1–80, ``subtitle`` 0–80, ``image`` URL, ``buttons`` 1–5 |

Every response may have ``delay``, 100–10000 ms. A button is ``{type, title (1–20), value}``:
``postback`` value 1–1000, ``goto`` the UUIDv4 of a block, ``url``/``webview`` an http(s) URL,
``phone`` ``+`` and 7–15 digits (``goto`` and ``phone`` values are literal). Text fields may hold
templates; what they render to is cut to the field's limit, and a response (or button) whose
required text renders empty is left out rather than sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from chathooks.platforms.chatbot.templates import Context, Template, TemplateError, check_name, text
from chathooks.profiles import Profile

BUTTON_TYPES = ("postback", "goto", "url", "webview", "phone")
QUICK_REPLY_BUTTONS = ("postback", "goto")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.IGNORECASE)
_PHONE = re.compile(r"\+[0-9]{7,15}")
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
ANY = "*"


class Drop(Exception):
    """A response or button whose required text rendered empty: left out of the answer."""


# --- compiled answers: a tree of parts that render to JSON ------------------------------------


@dataclass(frozen=True)
class Text:
    template: Template
    low: int
    high: int

    def render(self, context: Context) -> str:
        value = self.template.render(context)[:self.high]
        if len(value) < self.low or not value.strip():
            raise Drop
        return value


def _rendered(parts: tuple[Any, ...], context: Context) -> list[Any]:
    """Each part rendered; a part that drops out (an empty optional value) is left out."""
    out = []
    for part in parts:
        try:
            out.append(part.render(context))
        except Drop:
            continue
    return out


@dataclass(frozen=True)
class Items:
    items: tuple[Any, ...]
    low: int
    high: int

    def render(self, context: Context) -> list[Any]:
        out = _rendered(self.items, context)
        if len(out) < self.low:
            raise Drop
        return out[:self.high]


@dataclass(frozen=True)
class Fields:
    """An object: literal values as they are, parts rendered; an optional part that renders empty is left out."""

    values: tuple[tuple[str, Any], ...]
    optional: frozenset[str] = frozenset()

    def render(self, context: Context) -> dict[str, Any]:
        out = {}
        for name, value in self.values:
            if not hasattr(value, "render"):
                out[name] = value
                continue
            try:
                out[name] = value.render(context)
            except Drop:
                if name not in self.optional:
                    raise
        return out


@dataclass(frozen=True)
class ChatbotRule:
    block: str
    conditions: tuple[tuple[tuple[str, str], str], ...]
    responses: tuple[Fields, ...]
    attributes: tuple[tuple[str, Template], ...]

    def matches(self, node: Mapping[str, Any], context: Context) -> bool:
        block = self.block == ANY or self.block in (node.get("webhookName"), node.get("name"))
        return block and all(context.value(*name) == expected for name, expected in self.conditions)

    def render(self, context: Context) -> dict[str, Any]:
        responses = _rendered(self.responses, context)
        answer: dict[str, Any] = {"responses": responses} if responses else {}
        answer["attributes"] = {name: value.render(context)[:ATTRIBUTE_VALUE_MAX] for name, value in self.attributes}
        return answer


ATTRIBUTE_VALUE_MAX = 1024


def answer(rules: tuple[ChatbotRule, ...], call: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    """The answer to a webhook block's call: the first matching rule's, else ``{"attributes": {}}``."""
    context = Context(profile.as_text(), call["userAttributes"], call["attributes"])
    for rule in rules:
        if rule.matches(call["node"], context):
            return rule.render(context)
    return {"attributes": {}}


# --- validation at start ------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _template(value: str, high: int, url: bool = False) -> Template:
    try:
        template = Template.compile(value, url=url)
    except TemplateError as exc:
        raise ValidationError(str(exc)) from None
    literal = "".join(p for p in template.parts if isinstance(p, str))
    if len(literal) > high:
        raise ValidationError(f"longer than {high} characters")
    if template.is_literal and not literal.strip():
        raise ValidationError("must not be blank")
    if url and not _URL.match(value):
        raise ValidationError("must be an http(s) URL")
    return template


def _text(value: Any, low: int, high: int, url: bool = False) -> Text:
    if not isinstance(value, str):
        raise ValidationError("not a valid string")
    return Text(_template(value, high, url), low, high)


_DELAY = fields.Integer(strict=True, validate=validate.Range(min=100, max=10_000))


class _ButtonSchema(_Strict):
    type = fields.String(required=True, validate=validate.OneOf(BUTTON_TYPES))
    title = fields.Raw(required=True)
    value = fields.Raw(required=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Fields:
        kind, value = data["type"], data["value"]
        errors: dict[str, list[str]] = {}
        parts: list[tuple[str, Any]] = [("type", kind)]
        try:
            parts.append(("title", _text(data["title"], 1, 20)))
        except ValidationError as exc:
            errors["title"] = exc.messages  # type: ignore[assignment]
        try:
            if kind in ("goto", "phone"):
                pattern, what = (_UUID4, "the UUIDv4 of a block") if kind == "goto" else (_PHONE, "+ and 7-15 digits")
                if not (isinstance(value, str) and pattern.fullmatch(value)):
                    raise ValidationError(f"a {kind} button's value must be {what}, without templates")
                parts.append(("value", value))
            else:
                parts.append(("value", _text(value, 1, 1000 if kind == "postback" else 2048, url=kind != "postback")))
        except ValidationError as exc:
            errors["value"] = exc.messages  # type: ignore[assignment]
        if errors:
            raise ValidationError(errors)
        return Fields(tuple(parts))


def _buttons(raw: Any, low: int, high: int, allowed: tuple[str, ...]) -> Items:
    if not isinstance(raw, list) or not low <= len(raw) <= high:
        raise ValidationError(f"a list of {low} to {high} buttons")
    errors = {}
    buttons = []
    for n, button in enumerate(raw):
        try:
            if isinstance(button, dict) and button.get("type") in BUTTON_TYPES and button["type"] not in allowed:
                raise ValidationError({"type": [f"must be one of: {', '.join(allowed)}"]})
            buttons.append(_ButtonSchema().load(button))
        except ValidationError as exc:
            errors[n] = exc.messages
    if errors:
        raise ValidationError(errors)
    return Items(tuple(buttons), low, high)


# type → {field: (required, build)}; build turns the raw value into a part or raises ValidationError.
_SHAPES: dict[str, dict[str, tuple[bool, Any]]] = {
    "text": {"message": (True, lambda v: _text(v, 1, 1024))},
    "randomText": {"messages": (True, lambda v: _list(v, 1, 20, lambda m: _text(m, 1, 1024)))},
    "image": {"image": (True, lambda v: _text(v, 1, 2048, url=True))},
    "quickReplies": {"title": (True, lambda v: _text(v, 1, 640)),
                     "buttons": (True, lambda v: _buttons(v, 1, 13, QUICK_REPLY_BUTTONS))},
    "buttons": {"title": (True, lambda v: _text(v, 1, 640)),
                "buttons": (True, lambda v: _buttons(v, 1, 5, BUTTON_TYPES))},
    "cards": {"cards": (True, lambda v: _list(v, 1, 10, _card))},
}
_CARD: dict[str, tuple[bool, Any]] = {
    "title": (True, lambda v: _text(v, 1, 80)),
    "subtitle": (False, lambda v: _text(v, 1, 80)),
    "image": (False, lambda v: _text(v, 1, 2048, url=True)),
    "buttons": (False, lambda v: _buttons(v, 1, 5, BUTTON_TYPES)),
}


def _list(raw: Any, low: int, high: int, build: Any) -> Items:
    if not isinstance(raw, list) or not low <= len(raw) <= high:
        raise ValidationError(f"a list of {low} to {high} items")
    errors, items = {}, []
    for n, item in enumerate(raw):
        try:
            items.append(build(item))
        except ValidationError as exc:
            errors[n] = exc.messages
    if errors:
        raise ValidationError(errors)
    return Items(tuple(items), low, high)


def _object(raw: Any, shape: dict[str, tuple[bool, Any]], literal: tuple[tuple[str, Any], ...] = ()) -> Fields:
    if not isinstance(raw, dict):
        raise ValidationError("not a mapping")
    known = {name for name, _ in literal} | set(shape)
    errors: dict[str, Any] = {k: ["unknown field"] for k in raw if k not in known}
    parts, optional = list(literal), set()
    for name, (required, build) in shape.items():
        if name not in raw:
            if required:
                errors[name] = ["missing"]
            continue
        try:
            parts.append((name, build(raw[name])))
        except ValidationError as exc:
            errors[name] = exc.messages
        if not required:
            optional.add(name)
    if errors:
        raise ValidationError(errors)
    return Fields(tuple(parts), frozenset(optional))


def _card(raw: Any) -> Fields:
    return _object(raw, _CARD)


class _Response(fields.Field):
    """One response, checked against its type's shape."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Fields:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in _SHAPES:
            raise ValidationError({"type": [f"must be one of: {', '.join(_SHAPES)}"]})
        literal: list[tuple[str, Any]] = [("type", kind)]
        if "delay" in value:
            try:
                literal.append(("delay", _DELAY.deserialize(value["delay"])))
            except ValidationError as exc:
                raise ValidationError({"delay": exc.messages}) from None
        return _object(value, _SHAPES[kind], tuple(literal))


def _condition_value(value: Any) -> None:
    if isinstance(value, (list, dict)):
        raise ValidationError("must be a single value (string, number, true/false)")


class ChatbotRuleSchema(_Strict):
    block = fields.String(required=True, validate=[validate.Length(max=1024),
                                                   validate.Regexp(r".*\S", error="must not be blank")])
    if_ = fields.Dict(data_key="if", keys=fields.String(), values=fields.Raw(validate=_condition_value))
    responses = fields.List(_Response(), validate=validate.Length(max=20), load_default=list)
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=128)),
                             values=fields.String(validate=validate.Length(max=ATTRIBUTE_VALUE_MAX)), load_default=dict)

    @validates_schema
    def _names(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        for name in data.get("if_", {}):
            try:
                check_name(name)
            except TemplateError as exc:
                errors.setdefault("if", {})[name] = [str(exc)]
        for name, value in data.get("attributes", {}).items():
            try:
                Template.compile(value)
            except TemplateError as exc:
                errors.setdefault("attributes", {})[name] = [str(exc)]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ChatbotRule:
        conditions = tuple((check_name(k), text(v)) for k, v in data.get("if_", {}).items())
        attributes = tuple((k, Template.compile(v)) for k, v in data["attributes"].items())
        return ChatbotRule(data["block"], conditions, tuple(data["responses"]), attributes)

