"""The fast path agrees with marshmallow: same result when it accepts, marshmallow's own answer otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate

from chathooks.fast_load import DECLINE, FastLoader, schema_check
from chathooks.platforms.lhc import adapter as lhc
from chathooks.platforms.livechat import adapter as livechat
from chathooks.platforms.livechat_v2 import adapter as livechat_v2
from tests.helpers import fixture, fixture_names

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


def outcome(load, value: Any) -> tuple[str, Any]:  # type: ignore[no-untyped-def]
    try:
        return "loaded", load(value)
    except ValidationError as exc:
        return "invalid", exc.messages


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*prefix, i))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if new is DECLINE and not rest:
            del copy[head]
        else:
            copy[head] = replaced(value[head], rest, new)
        return copy
    copy = list(value)
    copy[head] = replaced(value[head], rest, None if new is DECLINE else new)
    return copy


def loaders_for(body: Any, source: str = "livechat") -> list[tuple[FastLoader, Any]]:
    """The loaders a body of ``source`` meets: LiveChat's envelope, and its payload's when the action is one
    we handle; v2's envelope and its event's (on the whole body); LHC's one schema."""
    if source == "lhc":
        return [(lhc.WEBHOOK, body)]
    adapter = livechat_v2 if source == "livechat_v2" else livechat
    pairs: list[tuple[FastLoader, Any]] = [(adapter.ENVELOPE, body)]
    kind = body.get("event_type" if adapter is livechat_v2 else "action") if isinstance(body, dict) else None
    spec = (livechat_v2.EVENTS if adapter is livechat_v2 else livechat.ACTIONS).get(kind) if isinstance(kind, str) \
        else None
    if spec is not None:
        pairs.append((spec.schema, body if adapter is livechat_v2 else body.get("payload")))
    return pairs


SOURCES = ("livechat", "livechat_v2", "lhc")
CONVERTED = {("lhc", "chat_addmsguser.legacy")}  # ids as strings, as older LHC sends them: marshmallow converts
FIXTURES = [(source, name) for source in SOURCES for name in fixture_names(source)]


@pytest.mark.parametrize(("source", "name"), FIXTURES)
def test_valid_fixtures_take_the_fast_path(source, name):
    for loader, value in loaders_for(fixture(name, source), source):
        fast = loader._check(value)  # type: ignore[misc]
        if (source, name) in CONVERTED:
            assert fast is DECLINE
            continue
        assert fast is not DECLINE, (source, name)
        assert fast == loader.schema.load(value)


def test_range_validated_integers_take_the_fast_path_within_the_range_only():
    class Stars(Schema):
        class Meta:
            unknown = "include"

        low = fields.Integer(validate=validate.Range(min=1, max=5))
        open_ = fields.Integer(validate=validate.Range(min=0, max=10, min_inclusive=False, max_inclusive=False))

    loader = FastLoader(Stars())
    for value in ({"low": 1, "open_": 9}, {"low": 5, "open_": 1}, {"low": 0}, {"low": 6}, {"open_": 0}, {"open_": 10},
                  {"low": "3"}, {"low": True}):
        assert outcome(loader.load, value) == outcome(loader.schema.load, value), value
    assert loader._check({"low": 1, "open_": 9}) is not DECLINE  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), case=st.sampled_from(FIXTURES))
def test_any_mutation_loads_as_marshmallow_does(data, case):
    source, name = case
    body = fixture(name, source)
    path = data.draw(st.sampled_from(paths(body)))
    new = data.draw(JSON | st.just(DECLINE))  # DECLINE here: delete the key
    mutated = replaced(body, path, new) if path or new is not DECLINE else body
    for loader, value in loaders_for(mutated, source):
        assert outcome(loader.load, value) == outcome(loader.schema.load, value)
        fast = loader._check(value)  # type: ignore[misc]
        if fast is not DECLINE:
            assert ("loaded", fast) == outcome(loader.schema.load, value)


class Converting(Schema):
    class Meta:
        unknown = "include"

    when = fields.DateTime()


class Strict(Schema):
    name = fields.String(validate=validate.Length(min=1))


def test_fields_it_does_not_model_are_left_to_marshmallow():
    assert schema_check(Converting()) is None
    assert schema_check(Strict()) is None  # unknown keys raise: not modelled
    assert FastLoader(Converting()).load({"when": "2025-09-01T10:00:00"})["when"].year == 2025


def test_a_value_marshmallow_would_convert_is_declined():
    class Flag(Schema):
        class Meta:
            unknown = "include"

        on = fields.Boolean()

    check = schema_check(Flag())
    assert check is not None
    assert check({"on": True}) == {"on": True}
    assert check({"on": "true"}) is DECLINE
    assert FastLoader(Flag()).load({"on": "true"}) == {"on": True}
