"""Hostile bodies at the ingress: always a JSON 4xx saying what is wrong, never a 5xx, never anything queued."""

from __future__ import annotations

import base64
import copy
import functools
import io
import json
import math
import operator
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app import create_app
from app.ingress import MAX_DEPTH
from tests.conftest import make_settings
from tests.helpers import SECRET, fixture, fixture_names
from tests.unit.app.conftest import queue_state_of

URL = "/webhooks/livechat"


def post_raw(client, data: bytes | str, content_type: str | None = "application/json"):  # type: ignore[no-untyped-def]
    return client.post(URL, data=data, content_type=content_type)


def post_chunked(client, data: bytes):  # type: ignore[no-untyped-def]
    """No Content-Length: the server terminates the stream, as gunicorn does for chunked requests."""
    return client.post(URL, input_stream=io.BytesIO(data), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})


def assert_rejected(response, status: int, queue_state) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """``status`` with a JSON error body, and nothing queued or marked seen; returns the body."""
    assert response.status_code == status, response.get_data()
    assert response.is_json and isinstance(response.json["error"], str)
    assert queue_state() == (0, frozenset())
    return response.json


def field_errors(body: dict[str, Any], *path: str | int) -> Any:
    errors = body["fields"]
    for part in path:
        errors = errors[str(part)]
    return errors


def with_event_field(key: str, raw_json: str) -> str:
    """The incoming_event fixture as JSON text with ``"key": <raw_json>`` added to the event."""
    text = json.dumps(fixture("incoming_event"))
    return text.replace('"type": "message"', f'"type": "message", "{key}": {raw_json}', 1)


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    "[" * 100_000 + "]" * 100_000,
    '{"a": ' * 100_000 + "1" + "}" * 100_000,
    "[" * 100_000,
])
def test_nesting_that_exhausts_the_parser_is_400(client, queue_state, data):
    body = assert_rejected(post_raw(client, data), 400, queue_state)
    assert field_errors(body, "body")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 900])
def test_nesting_deeper_than_the_limit_is_400_even_where_the_parser_copes(client, queue_state, depth):
    brackets = depth - 3  # inside the envelope, its payload and the event
    response = post_raw(client, with_event_field("nested", "[" * brackets + "]" * brackets))
    body = assert_rejected(response, 400, queue_state)
    assert field_errors(body, "body") == [f"nested deeper than {MAX_DEPTH} levels"]


def test_nesting_up_to_the_limit_is_accepted(client, queue_state):
    brackets = MAX_DEPTH - 3
    response = post_raw(client, with_event_field("nested", "[" * brackets + "]" * brackets))
    assert response.json["status"] == "queued"
    assert queue_state()[0] == 1


# --- size ------------------------------------------------------------------------------------


@pytest.fixture
def small_client(fake_redis):  # type: ignore[no-untyped-def]
    settings = make_settings(INGRESS_MAX_BYTES="4096")
    return create_app(settings, redis_client=fake_redis).test_client(), queue_state_of(fake_redis, settings)


def padded(size: int, field: str = "text") -> bytes:
    """The incoming_event fixture with ``payload.event[field]`` padded so the body is exactly ``size`` bytes."""
    body = fixture("incoming_event")
    body["payload"]["event"][field] = ""
    base = len(json.dumps(body).encode())
    body["payload"]["event"][field] = "x" * (size - base)
    data = json.dumps(body).encode()
    assert len(data) == size
    return data


def test_huge_string_within_the_limit_is_queued(small_client):
    client, queue_state = small_client
    response = post_raw(client, padded(4096))
    assert response.json["status"] == "queued"
    assert queue_state()[0] == 1


def test_huge_string_within_the_limit_in_an_id_field_is_400_naming_it(small_client):
    client, queue_state = small_client
    body = assert_rejected(post_raw(client, padded(4096, "id")), 400, queue_state)
    assert field_errors(body, "payload", "event", "id")


@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_body_one_byte_over_the_limit_is_413(small_client, how):
    client, queue_state = small_client
    post = post_chunked if how == "chunked" else post_raw
    assert_rejected(post(client, padded(4097)), 413, queue_state)


def test_chunked_body_of_exactly_the_limit_is_accepted(small_client):
    client, queue_state = small_client
    assert post_chunked(client, padded(4096)).json["status"] == "queued"
    assert queue_state()[0] == 1


def test_megabyte_string_is_queued_up_to_the_default_limit_and_413_past_it(client, queue_state):
    limit = 1024 * 1024
    assert post_raw(client, padded(limit + 1)).status_code == 413
    assert post_chunked(client, padded(limit + 1)).status_code == 413
    assert queue_state() == (0, frozenset())
    assert post_raw(client, padded(limit)).json["status"] == "queued"
    assert queue_state()[0] == 1


def test_content_length_over_the_limit_is_413_before_reading(small_client):
    client, queue_state = small_client
    response = client.post(URL, input_stream=io.BytesIO(b"{}"), content_type="application/json",
                           environ_overrides={"CONTENT_LENGTH": str(10**12)})
    assert_rejected(response, 413, queue_state)


def test_content_length_shorter_than_the_body_reads_only_what_it_announced(small_client):
    """The bytes past Content-Length are not this request's: what it announced is truncated JSON."""
    client, queue_state = small_client
    response = client.post(URL, input_stream=io.BytesIO(b"x" * 10**6), content_type="application/json",
                           environ_overrides={"CONTENT_LENGTH": "100"})
    assert field_errors(assert_rejected(response, 400, queue_state), "body")


def test_content_length_longer_than_the_body_is_400(small_client):
    client, queue_state = small_client
    data = padded(1000)
    response = client.post(URL, input_stream=io.BytesIO(data), content_type="application/json",
                           environ_overrides={"CONTENT_LENGTH": str(len(data) + 10)})
    assert field_errors(assert_rejected(response, 400, queue_state), "body") == ["incomplete body"]


# --- encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"\xff\xfe{}",
    json.dumps(fixture("incoming_event")).encode("utf-16"),
    json.dumps(fixture("incoming_event")).replace("refund", "r\u00e9fund").encode("latin-1"),
    json.dumps(fixture("incoming_event")).encode().replace(b"refund", b"\xed\xa0\x80"),  # a surrogate, UTF-8 encoded
    json.dumps(fixture("incoming_event")).encode().replace(b"refund", b"\xc0\xaf"),  # overlong
    b"\xef\xbb\xbf" + json.dumps(fixture("incoming_event")).encode(),  # byte order mark
])
def test_body_not_utf8_is_400(client, queue_state, data):
    assert field_errors(assert_rejected(post_raw(client, data), 400, queue_state), "body")


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "\\ud800\\u0041", "\\udc00\\ud800", "x\\ud83d"])
def test_unpaired_surrogate_in_a_string_is_400_at_its_field(client, queue_state, escape):
    text = json.dumps(fixture("incoming_event")).replace("Is there", f"Is {escape} there")
    body = assert_rejected(post_raw(client, text), 400, queue_state)
    assert field_errors(body, "payload", "event", "text")


def test_unpaired_surrogate_deep_in_a_list_is_400_at_its_index(client, queue_state):
    text = with_event_field("list", '[1, {"a": ["ok", "\\ud800"]}]')
    body = assert_rejected(post_raw(client, text), 400, queue_state)
    assert field_errors(body, "payload", "event", "list", 1, "a", 1)


@pytest.mark.parametrize("where", ["secret_key", "webhook_id"])
def test_unpaired_surrogate_in_the_envelope_is_400(client, queue_state, where):
    body = fixture("incoming_event")
    body[where] = "SURROGATE"
    text = json.dumps(body).replace("SURROGATE", "\\ud800")
    assert field_errors(assert_rejected(post_raw(client, text), 400, queue_state), where)


def test_unpaired_surrogate_in_a_key_is_400_at_its_object(client, queue_state):
    text = with_event_field("\\ud800", "1")
    body = assert_rejected(post_raw(client, text), 400, queue_state)
    assert field_errors(body, "payload", "event")


def test_escaped_surrogate_pair_is_a_character_and_accepted(client, queue_state):
    text = json.dumps(fixture("incoming_event")).replace("Is there", "\\ud83d\\ude00 Is there")
    assert post_raw(client, text).json["status"] == "queued"
    assert queue_state()[0] == 1


# --- JSON that Python accepts and the ingress does not ----------------------------------------


@pytest.mark.parametrize("text, key", [
    ('{"action": "incoming_event", "action": "agent_created"}', "action"),
    ('{"secret_key": "wrong", "secret_key": "%s"}' % SECRET, "secret_key"),
    (with_event_field("text", '"again"'), "text"),
    (with_event_field("deep", '[{"k": 1}, {"x": {"y": 1, "y": 2}}]'), "y"),
])
def test_duplicate_key_at_any_level_is_400_naming_it(client, queue_state, text, key):
    body = assert_rejected(post_raw(client, text), 400, queue_state)
    assert field_errors(body, "body") == [f"duplicate key {key!r}"]
    assert SECRET not in json.dumps(body)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_400(client, queue_state, literal):
    body = assert_rejected(post_raw(client, with_event_field("n", literal)), 400, queue_state)
    assert field_errors(body, "body")


@pytest.mark.parametrize("data", ["", " \n\t", "not json", "[1, 2]", '"a string"', "42", "4.2", "null", "true", "{}x"])
def test_body_that_is_not_one_json_object_is_400(client, queue_state, data):
    assert field_errors(assert_rejected(post_raw(client, data), 400, queue_state), "body")


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json-seq", "text/json",
])
def test_non_json_content_type_is_415(client, queue_state, content_type):
    assert_rejected(post_raw(client, json.dumps(fixture("incoming_event")), content_type), 415, queue_state)


# --- properties ------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
HOSTILE = st.sampled_from([math.nan, math.inf, -math.inf, "\ud800", "a\udfffb", "\x00", 10**400, "x" * 5000])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT | HOSTILE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
ONE_OF_EACH_TYPE = [None, True, 0, -1, 1.5, "", "x" * 300, [], [1], {}, {"a": 1}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


@st.composite
def mutated_fixture(draw: st.DrawFn, source: str) -> dict[str, Any]:
    """A valid fixture with fields removed, types swapped, values replaced or random fields added."""
    body = fixture(draw(st.sampled_from(fixture_names(source))), source)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(body))
        how = draw(st.sampled_from(["remove", "swap", "replace", "add", "add"]))
        if how == "add":  # unknown fields are tolerated: these bodies mostly stay valid
            parents = [()] + [path for path in paths if isinstance(_get(body, path), dict)]
            _get(body, draw(st.sampled_from(parents)))[draw(TEXT)] = draw(JSON_VALUES)
            continue
        *parents, key = draw(st.sampled_from(paths))
        parent = _get(body, parents)
        if how == "remove":
            del parent[key]
        elif how == "swap":
            other_types = [v for v in ONE_OF_EACH_TYPE if type(v) is not type(parent[key])]
            parent[key] = copy.deepcopy(draw(st.sampled_from(other_types)))  # later mutations must not change it
        else:
            parent[key] = draw(JSON_VALUES)
    return body


def _get(body: dict[str, Any], path: Any) -> Any:
    return functools.reduce(operator.getitem, path, body)


def hostile_bodies(source: str) -> st.SearchStrategy[Any]:
    """Raw bytes, or a value to send as (Python's lenient) JSON; mostly mutated fixtures where there are some."""
    bodies = [
        st.binary(max_size=300),
        JSON_VALUES,
        st.dictionaries(TEXT, JSON_VALUES, max_size=6).map(lambda v: {**v, "secret_key": SECRET}),
    ]
    if fixture_names(source):
        bodies += [mutated_fixture(source)] * 3
    return st.one_of(bodies)


def strict_json(value: Any) -> bool:
    """Whether ``value`` has a strict UTF-8 JSON form: no NaN or infinities, no unpaired surrogates."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except (ValueError, UnicodeEncodeError):
        return False
    return True


BASIC = "hooks:pa55"  # the LiveChat routes' HTTP Basic credentials in the shared app (v2 needs some)
CHATBOT_TOKEN = "cb-token"  # ChatBot's, in the query string
LHC_TOKEN = "lhc-token"  # LHC's Bearer token
APP_TOKEN = "app-hooks-token"  # the App Webhooks' path token
MARKETPLACE_ENV = {"LIVECHAT_CLIENT_ID": "client-1", "LIVECHAT_CLIENT_SECRET": "client-secret-1",
                   "CHATHOOKS_PUBLIC_URL": "https://hooks.example.com", "LIVECHAT_APP_WEBHOOK_TOKEN": APP_TOKEN,
                   "CHATHOOKS_SECRET_KEY": "x" * 43 + "="}


@pytest.fixture(scope="module", params=["single-license", "multi-license"])
def shared_app(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """One app for every example, so the queue's state carries across them as in production; in each mode."""
    mode = MARKETPLACE_ENV if request.param == "multi-license" else {}
    settings = make_settings(INGRESS_BASIC_AUTH=BASIC, CHATBOT_WEBHOOK_TOKENS=CHATBOT_TOKEN,
                             LHC_WEBHOOK_SECRETS=LHC_TOKEN, **mode)
    redis = fakeredis.FakeRedis()
    return create_app(settings, redis_client=redis), queue_state_of(redis, settings)


def ingress_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(path, source) of every webhook endpoint; blueprints are named after their source."""
    return sorted((rule.rule, rule.endpoint.partition(".")[0]) for rule in app.url_map.iter_rules()
                  if "POST" in rule.methods)


def source_off(app) -> set[str]:  # type: ignore[no-untyped-def]
    """The sources whose routes the app's mode turns off: the App Webhooks without multi-license mode."""
    return set() if app.extensions["chathooks"].settings.marketplace else {"livechat_app"}


def test_every_ingress_route_is_fuzzed(shared_app):
    routes = ingress_routes(shared_app[0])
    assert {(URL, "livechat"), ("/webhooks/livechat/v2", "livechat_v2"), ("/webhooks/chatbot", "chatbot"),
            ("/webhooks/lhc", "lhc")} <= set(routes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_body_is_a_json_4xx_or_a_documented_200_and_only_valid_ones_are_queued(shared_app, data):
    app, queue_state = shared_app
    off = source_off(app)
    path, source = data.draw(st.sampled_from(ingress_routes(app)), label="route")
    path = path.replace("<token>", APP_TOKEN)
    body = data.draw(hostile_bodies(source), label="body")
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    length, seen = queue_state()
    auth = {"Authorization": f"Bearer {LHC_TOKEN}" if source == "lhc" else
            "Basic " + base64.b64encode(BASIC.encode()).decode()}
    response = app.test_client().post(path, data=raw, content_type="application/json", headers=auth,
                                      query_string={"token": CHATBOT_TOKEN} if source == "chatbot" else None)
    outcome: int | str | None = response.status_code
    if source == "lhc":  # every answer has an empty body (LHC writes bodies into the visitor's chat)
        assert response.get_data() == b""
        outcome = response.headers.get("X-Chathooks-Status", outcome)
        answer: Any = response.headers
    else:
        assert response.is_json
        answer = response.json
    if outcome == 200:  # ChatBot's answer carries no status: it was answered, and queued unless a repeat
        outcome = answer.get("status", "answered" if "attributes" in answer else None)
    event(f"{path}: {outcome}")
    assert 400 <= response.status_code < 500 or outcome in ("queued", "duplicate", "ignored", "answered",
                                                            "handled"), answer
    if source in off:
        assert response.status_code == 404, answer  # the route of a mode that is off, whatever the body
    elif not (isinstance(body, bytes) or strict_json(body)):
        assert response.status_code == 400, answer
    after_length, after_seen = queue_state()
    # An answered ChatBot call, or an uninstall (its clean-up), may queue too.
    if outcome == "queued" or (outcome in ("answered", "handled") and after_length > length):
        assert after_length == length + 1 and seen < after_seen and len(after_seen - seen) == 1
    else:
        assert (after_length, after_seen) == (length, seen)
