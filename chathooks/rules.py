"""The rules file (``CHATHOOKS_RULES``): loaded and validated once into typed, immutable rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from chathooks.matching import MAX_MATCH_CHARS, words
from chathooks.platforms.chatbot.answers import ChatbotRule, ChatbotRuleSchema
from chathooks.platforms.lhc.rules import LhcRule, LhcRuleSchema
from chathooks.settings import ConfigError
from chathooks.triggers.rules import Trigger, TriggerSchema, TriggerSet, nudge_trigger, unique_names

Author = Literal["customer", "agent", "any"]
Status = Literal["subscribed", "pending"]


@dataclass(frozen=True, slots=True)
class TagRule:
    """Apply ``tag`` when a message by ``author`` contains a keyword or matches ``pattern``."""

    tag: str
    keywords: tuple[str, ...] = ()
    pattern: str | None = None
    author: Author = "any"
    _regexes: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regexes: list[re.Pattern[str]] = []
        if self.keywords:
            regexes.append(words(self.keywords))
        if self.pattern is not None:
            regexes.append(re.compile(self.pattern, re.IGNORECASE))
        object.__setattr__(self, "_regexes", tuple(regexes))

    def matches_text(self, text: str) -> bool:
        """Whether ``text`` has a keyword or matches the pattern, whoever wrote it."""
        return any(r.search(text) for r in self._regexes)


@dataclass(frozen=True, slots=True)
class NudgeRule:
    after_seconds: int
    message: str


@dataclass(frozen=True, slots=True)
class RatingRule:
    good: str
    bad: str
    bad_tag: str | None = None


@dataclass(frozen=True, slots=True)
class MarketingRule:
    status_if_new: Status = "subscribed"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rules:
    """All automations' settings; ``None`` (or no tagging rules) means that automation is off."""

    tagging: tuple[TagRule, ...] = ()
    nudge: NudgeRule | None = None
    rating: RatingRule | None = None
    marketing: MarketingRule = field(default_factory=MarketingRule)
    chatbot: tuple[ChatbotRule, ...] = ()  # ChatBot.com webhook blocks' answers, first match wins
    lhc: LhcRule = field(default_factory=LhcRule)  # Live Helper Chat: subjects, what a good rating is
    triggers: tuple[Trigger, ...] = ()
    firing: TriggerSet = field(init=False, repr=False, compare=False)  # the nudge first, then ``triggers``

    def __post_init__(self) -> None:
        nudge = (nudge_trigger(self.nudge.after_seconds, self.nudge.message),) if self.nudge else ()
        object.__setattr__(self, "firing", TriggerSet((*nudge, *self.triggers)))

    def match_tags(self, text: str, role: str) -> frozenset[str]:
        """Tags whose rules match a message ``text`` written by a ``role`` ("customer" or "agent")."""
        return tags_by(self.text_matches(text), role)

    def text_matches(self, text: str) -> tuple[TagRule, ...]:
        """The tagging rules whose words or pattern a message ``text`` matches, whoever wrote it."""
        text = text[:MAX_MATCH_CHARS]
        return tuple(rule for rule in self.tagging if rule.matches_text(text))


def tags_by(rules: tuple[TagRule, ...], role: str) -> frozenset[str]:
    """The tags of those of ``rules`` (matched by a message's text) that apply to its author's ``role``."""
    if role not in ("customer", "agent"):
        return frozenset()
    return frozenset(rule.tag for rule in rules if rule.author in ("any", role))


def load_rules(path: str | None) -> Rules:
    """Read and validate the rules file at ``path`` (None: the built-in defaults); raise ConfigError."""
    if path is None:
        source = "built-in defaults"
        text = files("chathooks").joinpath("default_rules.yaml").read_text(encoding="utf-8")
    else:
        source = path
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or e
            raise ConfigError(f"CHATHOOKS_RULES ({source}): cannot read the file: {reason}") from e
    try:
        # JSON first: PyYAML (YAML 1.1) rejects valid JSON indented with tabs.
        data = json.loads(text)
    except ValueError:
        data = _yaml(text, source)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"CHATHOOKS_RULES ({source}): expected a mapping at the top level, got {got}")
    try:
        return _RulesSchema().load(data)
    except ValidationError as e:
        problems = "; ".join(_describe(e.messages, data))
        raise ConfigError(f"CHATHOOKS_RULES ({source}): {problems}") from e


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"CHATHOOKS_RULES ({source}): invalid YAML{at}: {getattr(e, 'problem', None) or e}") from e


def _describe(messages: Any, data: Any, where: str = "") -> list[str]:
    """Flatten marshmallow's nested messages into "tagging[2] (tag 'x'): pattern: reason" lines."""
    if not isinstance(messages, dict):
        return [f"{where}: {str(m).rstrip('.')}" for m in messages]
    lines = []
    for key, sub in messages.items():
        if isinstance(data, dict):
            child = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            child = data[key]
        else:
            child = None
        if key == "_schema":
            label = where
        elif isinstance(key, int):
            names = ("tag", "block", "name")
            named = next(((k, child[k]) for k in names if isinstance(child, dict) and k in child), None)
            label = f"{where}[{key}]" + (f" ({named[0]} {named[1]!r})" if named and isinstance(named[1], str) else "")
        else:
            label = f"{where}: {key}" if where else str(key)
        lines += _describe(sub, child, label)
    return lines


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def _regex(value: str) -> None:
    try:
        re.compile(value, re.IGNORECASE)
    except re.error as e:
        raise ValidationError(f"bad regex: {e}") from e


class _Int(fields.Integer):
    """An integer, strictly: not 1.5, not "120", not true."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _text(**kwargs: Any) -> fields.String:
    return fields.String(validate=_not_blank, **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _TagRuleSchema(_Strict):
    tag = _text(required=True)
    keywords = fields.List(_text())
    pattern = fields.String(validate=_regex)
    author = fields.String(validate=validate.OneOf(("customer", "agent", "any")))

    @validates_schema
    def _needs_a_matcher(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("keywords") and data.get("pattern") is None:
            raise ValidationError("needs keywords or pattern (or both)")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TagRule:
        return TagRule(**{**data, "keywords": tuple(data.get("keywords", ()))})


class _NudgeSchema(_Strict):
    after_seconds = _Int(required=True, validate=validate.Range(min=1))
    message = _text(required=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> NudgeRule:
        return NudgeRule(**data)


class _RatingSchema(_Strict):
    good = _text(required=True)
    bad = _text(required=True)
    bad_tag = _text()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> RatingRule:
        return RatingRule(**data)


class _MarketingSchema(_Strict):
    status_if_new = fields.String(validate=validate.OneOf(("subscribed", "pending")))
    tags = fields.List(_text())

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> MarketingRule:
        return MarketingRule(**{**data, "tags": tuple(data.get("tags", ()))})


class _RulesSchema(_Strict):
    tagging = fields.List(fields.Nested(_TagRuleSchema))
    nudge = fields.Nested(_NudgeSchema)
    rating = fields.Nested(_RatingSchema)
    marketing = fields.Nested(_MarketingSchema)
    chatbot = fields.List(fields.Nested(ChatbotRuleSchema))
    lhc = fields.Nested(LhcRuleSchema)
    triggers = fields.List(fields.Nested(TriggerSchema), validate=unique_names)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Rules:
        lists = {name: tuple(data.get(name, ())) for name in ("tagging", "chatbot", "triggers")}
        return Rules(**{**data, **lists})
