"""POST /webhooks/livechat/v2: every status of SPEC §5's v2 section."""

from __future__ import annotations

import json
import logging

import pytest

from app import create_app
from chathooks.redis_client import connect
from tests.conftest import make_settings
from tests.helpers import fixture, fixture_names
from tests.unit.app.conftest import field_errors, queued

URL = "/webhooks/livechat/v2"
SOURCE = "livechat_v2"
AUTH = ("hooks", "pa55")
TOKEN = "v2-api-token-0123456789abcdef"
HANDLED = [n for n in fixture_names(SOURCE) if not n.startswith("canned_response_changed")]


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    return make_settings(INGRESS_BASIC_AUTH=":".join(AUTH))


def post(client, body, auth=AUTH, **kwargs):  # type: ignore[no-untyped-def]
    return client.post(URL, json=body, auth=auth, **kwargs)


@pytest.mark.parametrize("name", HANDLED)
def test_handled_event_type_is_queued_once(client, fake_redis, settings, name):
    response = post(client, fixture(name, SOURCE))
    assert response.status_code == 200
    assert response.json["status"] == "queued"
    [message] = queued(fake_redis, settings)
    assert message["id"] == response.json["id"]
    assert message["source"] == SOURCE and message["events"]


@pytest.mark.parametrize("name", HANDLED)
def test_a_retry_is_a_duplicate_and_not_queued_again(client, fake_redis, settings, name):
    first = post(client, fixture(name, SOURCE))
    again = post(client, fixture(name, SOURCE))
    assert again.json == {"status": "duplicate", "id": first.json["id"]}
    assert len(queued(fake_redis, settings)) == 1


@pytest.mark.parametrize("event_type", ["canned_response_changed", "chat_transferred"])
def test_event_types_without_automation_are_ignored(client, fake_redis, settings, event_type):
    body = fixture("canned_response_changed", SOURCE)
    body["event_type"] = event_type
    response = post(client, body)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert queued(fake_redis, settings) == []


def test_without_ingress_basic_auth_the_route_is_403_naming_it(fake_redis):
    client = create_app(make_settings(), redis_client=fake_redis).test_client()
    for auth in (None, AUTH):
        response = post(client, fixture("chat_started", SOURCE), auth=auth)
        assert response.status_code == 403
        assert "INGRESS_BASIC_AUTH" in response.json["error"]
    assert fake_redis.llen(make_settings().queue) == 0


def test_basic_auth_alone_lets_the_ingress_start():
    settings = make_settings(LIVECHAT_WEBHOOK_SECRETS="", INGRESS_BASIC_AUTH="hooks:pa55")
    settings.require_secrets()


@pytest.mark.parametrize("auth", [None, ("hooks", "nope"), ("other", "pa55"), ("hooks", "")])
def test_missing_or_wrong_basic_auth_is_401(client, fake_redis, settings, auth):
    response = post(client, fixture("chat_started", SOURCE), auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.is_json and response.json["error"]
    assert queued(fake_redis, settings) == []


def test_basic_auth_is_checked_before_the_body(client):
    response = client.post(URL, data=b"not json", content_type="text/plain")
    assert response.status_code == 401


def test_the_token_is_never_queued_stored_or_logged(client, fake_redis, settings, caplog):
    caplog.set_level(logging.DEBUG)
    for name in fixture_names(SOURCE):
        post(client, fixture(name, SOURCE))
    bad = fixture("chat_ended", SOURCE)
    bad["chat"]["ended_timestamp"] = "soon"
    assert post(client, bad).status_code == 400
    assert queued(fake_redis, settings)
    assert TOKEN not in caplog.text
    assert all(TOKEN.encode() not in fake_redis.dump(k) for k in fake_redis.keys("*"))


def test_a_rejected_body_never_echoes_its_token(client):
    body = fixture("chat_ended", SOURCE)
    body["license_id"] = None
    response = post(client, body)
    assert response.status_code == 400
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("mutate, path", [
    (lambda b: b.pop("event_type"), ("event_type",)),
    (lambda b: b.pop("license_id"), ("license_id",)),
    (lambda b: b.__setitem__("license_id", True), ("license_id",)),
    (lambda b: b.pop("chat"), ("chat",)),
    (lambda b: b["chat"].pop("id"), ("chat", "id")),
    (lambda b: b["chat"]["messages"][0].__setitem__("user_type", 3), ("chat", "messages", "0", "user_type")),
    (lambda b: b["chat"].__setitem__("ended_timestamp", "yesterday"), ("chat", "ended_timestamp")),
    (lambda b: b["visitor"].__setitem__("id", ""), ("visitor", "id")),
])
def test_malformed_body_is_400_with_field_errors(client, fake_redis, settings, mutate, path):
    body = fixture("chat_ended", SOURCE)
    mutate(body)
    field_errors(post(client, body), *path)
    assert queued(fake_redis, settings) == []


def test_unknown_fields_are_tolerated(client):
    body = fixture("chat_started", SOURCE)
    body["something_new"] = {"x": [1]}
    body["chat"]["future"] = True
    assert post(client, body).json["status"] == "queued"


def test_a_non_json_content_type_is_415(client):
    response = client.post(URL, data=json.dumps(fixture("chat_started", SOURCE)), content_type="text/plain",
                           auth=AUTH)
    assert response.status_code == 415 and response.is_json


def test_a_body_over_the_limit_is_413(fake_redis):
    settings = make_settings(INGRESS_BASIC_AUTH=":".join(AUTH), INGRESS_MAX_BYTES="2048")
    client = create_app(settings, redis_client=fake_redis).test_client()
    body = fixture("chat_started", SOURCE)
    body["padding"] = "x" * 4096
    assert post(client, body).status_code == 413


def test_not_a_json_object_is_400(client):
    response = client.post(URL, data="[1, 2]", content_type="application/json", auth=AUTH)
    assert response.status_code == 400 and response.json["fields"]


def test_redis_unreachable_is_503_never_200(settings):
    client = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", timeout=0.2)).test_client()
    response = post(client, fixture("chat_ended", SOURCE))
    assert response.status_code == 503
    assert "Retry-After" in response.headers and response.is_json


def test_answers_are_counted_under_the_v2_source(client, fake_redis, settings):
    post(client, fixture("chat_started", SOURCE))
    post(client, fixture("chat_started", SOURCE))
    post(client, fixture("canned_response_changed", SOURCE))
    post(client, fixture("chat_started", SOURCE), auth=None)
    counters = {k.decode(): int(v) for k, v in fake_redis.hgetall(f"{settings.key_prefix}metrics").items()}
    assert counters["received:livechat_v2"] == 4
    assert counters["queued:livechat_v2"] == 1
    assert counters["duplicate:livechat_v2"] == 1
    assert counters["ignored:livechat_v2"] == 1
    assert counters["rejected:bad_basic_auth"] == 1
