"""POST /webhooks/livechat: every row of SPEC §5's table."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import threading

import pytest

from app import create_app
from chathooks.redis_client import connect
from tests.conftest import make_settings
from tests.helpers import SECRET, fixture, fixture_names
from tests.unit.app.conftest import field_errors, queued

HANDLED = [n for n in fixture_names() if n.split(".")[0] not in ("events_marked_as_seen", "agent_created")]


def post(client, body, **kwargs):  # type: ignore[no-untyped-def]
    return client.post("/webhooks/livechat", json=body, **kwargs)


@pytest.mark.parametrize("name", HANDLED)
def test_handled_action_is_queued_once(client, fake_redis, settings, name):
    response = post(client, fixture(name))
    assert response.status_code == 200
    assert response.json["status"] == "queued"
    [message] = queued(fake_redis, settings)
    assert message["id"] == response.json["id"]
    assert message["events"], "a queued delivery carries normalised events"


def test_retry_of_a_delivery_is_a_duplicate_and_not_queued_again(client, fake_redis, settings):
    first = post(client, fixture("incoming_event"))
    again = post(client, fixture("incoming_event"))
    assert again.status_code == 200
    assert again.json == {"status": "duplicate", "id": first.json["id"]}
    assert len(queued(fake_redis, settings)) == 1


def test_a_duplicate_is_told_in_the_story_of_a_chat_the_workers_know(client, fake_redis, settings):
    timeline = f"{settings.key_prefix}timeline:RX8QK2MZ1A"
    post(client, fixture("incoming_event"))
    post(client, fixture("incoming_event"))
    assert not fake_redis.exists(timeline)  # no story yet: a duplicate does not start one
    fake_redis.zadd(timeline, {"{}": 1.0})
    post(client, fixture("incoming_event"))
    (told,) = [json.loads(m) for m in fake_redis.zrange(timeline, 0, -1) if m != b"{}"]
    assert (told["type"], told["action"], told["outcome"]) == ("delivery", "incoming_event", "duplicate")


def test_flower_shows_a_delivery_by_source_action_and_chat(client, fake_redis, settings):
    post(client, fixture("incoming_event"))
    (raw,) = fake_redis.lrange(settings.queue, 0, -1)
    assert json.loads(raw)["headers"]["argsrepr"] == "livechat incoming_event chat RX8QK2MZ1A"


def test_incoming_event_is_deduplicated_on_the_event_id(client, fake_redis, settings):
    body = fixture("incoming_event")
    post(client, body)
    body["payload"]["event"]["text"] = "edited on the way"
    body["webhook_id"] = "another-registration"
    assert post(client, body).json["status"] == "duplicate"
    body["payload"]["event"]["id"] = "RX8QK2NB7C_99"
    assert post(client, body).json["status"] == "queued"


@pytest.mark.parametrize("name", ["events_marked_as_seen", "events_marked_as_seen.v3.5", "agent_created"])
def test_action_without_automation_is_ignored(client, fake_redis, settings, name):
    response = post(client, fixture(name))
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert queued(fake_redis, settings) == []


def test_event_no_automation_cares_about_is_ignored(client, fake_redis, settings):
    body = fixture("incoming_event")
    body["payload"]["event"] = {"id": "X_1", "type": "system_message", "system_message_type": "chat_transferred",
                                "text": "Chat transferred", "created_at": "2025-09-01T10:00:00.000000Z"}
    assert post(client, body).json == {"status": "ignored"}
    assert queued(fake_redis, settings) == []


@pytest.mark.parametrize("secret", [None, "", "wrong", "test-secret ", 12345, ["test-secret"]])
def test_missing_or_wrong_secret_is_401(client, fake_redis, settings, secret):
    body = fixture("incoming_event")
    if secret is None:
        del body["secret_key"]
    else:
        body["secret_key"] = secret
    response = post(client, body)
    assert response.status_code == 401
    assert "error" in response.json
    assert queued(fake_redis, settings) == []


@pytest.mark.parametrize("where", [
    {"headers": {"X-Secret-Key": SECRET}},
    {"headers": {"Authorization": SECRET}},
    {"headers": {"Authorization": f"Bearer {SECRET}"}},
    {"headers": {"X-LiveChat-Secret": SECRET, "Authorization": SECRET}},
    {"query_string": {"secret_key": SECRET}},
])
def test_secret_anywhere_but_the_body_is_401(client, queue_state, where):
    body = fixture("incoming_event")
    del body["secret_key"]
    response = post(client, body, **where)
    assert response.status_code == 401
    assert response.json["error"]
    assert queue_state() == (0, frozenset())


ENVELOPE_WRONG_TYPES = [
    *(("webhook_id", v) for v in (7, None, [], {}, True, "", "x" * 257)),
    *(("action", v) for v in (7, None, ["incoming_event"], {}, False, "", "x" * 101)),
    *(("organization_id", v) for v in (7, None, [], {"id": "x"}, "")),
    *(("payload", v) for v in ("{}", 7, None, [], True)),
    *(("additional_data", v) for v in ("x", 7, None, [], True)),
]


@pytest.mark.parametrize("field, value", ENVELOPE_WRONG_TYPES)
def test_envelope_field_of_the_wrong_type_is_400_naming_it(client, queue_state, field, value):
    body = fixture("incoming_event")
    body[field] = value
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["fields"][field]
    assert queue_state() == (0, frozenset())


@pytest.mark.parametrize("value", [True, 7, "x", ["y"], {"id": 1}])
def test_legacy_license_id_of_any_type_is_tolerated(client, value):
    body = fixture("incoming_event")
    body["license_id"] = value
    assert post(client, body).json["status"] == "queued"


def test_every_configured_secret_is_accepted_for_rotation(client):
    body = fixture("incoming_event")
    body["secret_key"] = "old-secret"
    assert post(client, body).json["status"] == "queued"


@pytest.fixture
def basic_client(fake_redis):  # type: ignore[no-untyped-def]
    settings = make_settings(INGRESS_BASIC_AUTH="hooks:pa55")
    return create_app(settings, redis_client=fake_redis).test_client()


@pytest.mark.parametrize("auth", [None, ("hooks", "nope"), ("other", "pa55")])
def test_basic_auth_required_when_configured(basic_client, auth):
    response = post(basic_client, fixture("incoming_event"), auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.is_json


def test_basic_auth_accepted(basic_client):
    assert post(basic_client, fixture("incoming_event"), auth=("hooks", "pa55")).json["status"] == "queued"


@pytest.mark.parametrize("mutate, path", [
    (lambda b: b.pop("action"), ("action",)),
    (lambda b: b.pop("webhook_id"), ("webhook_id",)),
    (lambda b: b.__setitem__("payload", "nope"), ("payload",)),
    (lambda b: b["payload"].pop("chat_id"), ("payload", "chat_id")),
    (lambda b: b["payload"]["event"].pop("id"), ("payload", "event", "id")),
    (lambda b: b["payload"]["event"].__setitem__("type", 7), ("payload", "event", "type")),
    (lambda b: b["payload"].__setitem__("thread_id", "x" * 10_000), ("payload", "thread_id")),
])
def test_invalid_envelope_or_payload_is_400_with_field_errors(client, fake_redis, settings, mutate, path):
    body = fixture("incoming_event")
    mutate(body)
    field_errors(post(client, body), *path)
    assert queued(fake_redis, settings) == []


def test_invalid_rating_score_is_400(client):
    body = fixture("thread_properties_updated")
    body["payload"]["properties"]["rating"]["score"] = 5
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["fields"]["payload"]["properties"]["rating"]["score"]


def test_unknown_fields_are_tolerated(client):
    body = fixture("incoming_event")
    body["brand_new_field"] = {"x": 1}
    body["payload"]["event"]["future_thing"] = [1, 2]
    assert post(client, body).json["status"] == "queued"


def test_redis_unreachable_is_503_never_200(settings):
    dead = connect("redis://127.0.0.1:1/0", timeout=0.2)
    client = create_app(settings, redis_client=dead).test_client()
    response = post(client, fixture("incoming_event"))
    assert response.status_code == 503
    assert response.is_json
    assert "Retry-After" in response.headers


def test_unknown_route_and_method_answer_json(client):
    assert client.get("/webhooks/livechat").status_code == 405
    assert client.get("/webhooks/livechat").is_json
    assert client.get("/nope").status_code == 404
    assert client.get("/nope").is_json
    assert client.options("/webhooks/livechat").status_code == 405
    assert client.options("/webhooks/livechat").is_json


REJECTED_WITH_A_SECRET = [
    lambda b: b["payload"].pop("chat_id"),
    lambda b: b.__setitem__("action", 7),
    lambda b: b["payload"]["event"].__setitem__("created_at", float("nan")),
    lambda b: b["payload"]["event"].__setitem__("text", "\ud800"),
    lambda b: b["payload"].__setitem__("deep", functools.reduce(lambda inner, _: [inner], range(40), [])),
]


@pytest.mark.parametrize("secret", [SECRET, "a-wrong-but-distinctive-secret"])
@pytest.mark.parametrize("mutate", REJECTED_WITH_A_SECRET)
def test_rejected_request_never_echoes_or_logs_its_secret(client, caplog, secret, mutate):
    caplog.set_level(logging.DEBUG)
    body = fixture("incoming_event")
    body["secret_key"] = secret
    mutate(body)
    response = client.post("/webhooks/livechat", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (400, 401)
    assert secret not in response.get_data(as_text=True)
    assert secret not in caplog.text


def test_secret_in_a_duplicate_key_is_never_echoed(client, caplog):
    caplog.set_level(logging.DEBUG)
    text = json.dumps(fixture("incoming_event"))[:-1] + f', "secret_key": "{SECRET}-again"}}'
    response = client.post("/webhooks/livechat", data=text, content_type="application/json")
    assert response.status_code == 400
    assert "secret_key" in response.json["fields"]["body"][0]
    assert SECRET not in response.get_data(as_text=True) and SECRET not in caplog.text


def test_secret_never_reaches_logs_or_queue(client, fake_redis, settings, caplog):
    caplog.set_level(logging.DEBUG)
    for name in HANDLED + ["events_marked_as_seen"]:
        post(client, fixture(name))
    bad = fixture("incoming_event")
    bad["payload"].pop("chat_id")
    post(client, bad)
    dead = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", timeout=0.2)).test_client()
    post(dead, fixture("incoming_event"))
    assert SECRET not in caplog.text
    assert all(SECRET.encode() not in raw for raw in fake_redis.lrange(settings.queue, 0, -1))
    assert all(SECRET.encode() not in fake_redis.dump(k) for k in fake_redis.keys("*"))


def test_a_hung_redis_costs_one_timeout_not_several(settings):
    """A Redis that accepts connections but never answers (frozen, overloaded): one attempt, then 503.

    Timeouts are not retried, and the counters (in that same Redis) are not tried after it failed.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    hung = connect(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", timeout=0.2)
    try:
        response = post(create_app(settings, redis_client=hung).test_client(), fixture("incoming_event"))
        assert response.status_code == 503
        assert len(accepted) == 1
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
