"""POST /webhooks/livechat: every row of SPEC §5's table."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from app import create_app
from chathooks.redis_client import connect
from tests.conftest import make_settings
from tests.helpers import SECRET, fixture, fixture_names

HANDLED = [n for n in fixture_names() if n.split(".")[0] not in ("events_marked_as_seen", "agent_created")]


def queued(fake_redis, settings) -> list[dict]:  # type: ignore[no-untyped-def]
    """The delivery messages waiting in the queue, decoded as a worker would."""
    out = []
    for raw in fake_redis.lrange(settings.queue, 0, -1):
        envelope = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        assert envelope["headers"]["task"] == "chathooks.process_delivery"
        out.append(args[0])
    return out


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


def test_secret_in_a_header_instead_of_the_body_is_401(client, fake_redis, settings):
    body = fixture("incoming_event")
    del body["secret_key"]
    assert post(client, body, headers={"X-Secret-Key": SECRET, "Authorization": SECRET}).status_code == 401


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


@pytest.mark.parametrize("data, field", [
    (b"not json", "body"),
    (b"\xff\xfe{}", "body"),
    (b"[1, 2]", "body"),
    (b'"a string"', "body"),
    (b"[" * 100_000 + b"]" * 100_000, "body"),
])
def test_body_that_is_not_a_json_object_is_400(client, fake_redis, settings, data, field):
    response = client.post("/webhooks/livechat", data=data, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json["fields"]
    assert queued(fake_redis, settings) == []


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
    response = post(client, body)
    assert response.status_code == 400
    errors = response.json["fields"]
    for part in path:
        errors = errors[part]
    assert errors
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


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(client, fake_redis, settings, content_type):
    data = json.dumps(fixture("incoming_event"))
    response = client.post("/webhooks/livechat", data=data, content_type=content_type)
    assert response.status_code == 415
    assert response.is_json
    assert queued(fake_redis, settings) == []


def test_body_over_the_limit_is_413(fake_redis):
    settings = make_settings(INGRESS_MAX_BYTES="2048")
    client = create_app(settings, redis_client=fake_redis).test_client()
    body = fixture("incoming_event")
    body["payload"]["event"]["text"] = "x" * 4096
    response = post(client, body)
    assert response.status_code == 413
    assert response.is_json
    assert queued(fake_redis, settings) == []


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
