"""POST /webhooks/lhc: every status of SPEC §5's LHC section, and every answer with an empty body."""

from __future__ import annotations

import json
import logging

import pytest

from app import create_app
from chathooks.redis_client import connect
from tests.conftest import make_settings
from tests.helpers import fixture, fixture_names
from tests.unit.app.conftest import queued

URL = "/webhooks/lhc"
SOURCE = "lhc"
TOKEN = "lhc-bearer-7c1e"
HANDLED = [n for n in fixture_names(SOURCE) if not n.startswith("chat_accept")]


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    return make_settings(LHC_WEBHOOK_SECRETS=f"older,{TOKEN}")


def post(client, body, token=TOKEN, content_type="application/json", **kwargs):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, headers=headers, content_type=content_type, **kwargs)


@pytest.mark.parametrize("name", HANDLED)
def test_each_event_is_queued_with_an_empty_204(client, fake_redis, settings, name):
    response = post(client, fixture(name, SOURCE))
    assert (response.status_code, response.headers["X-Chathooks-Status"], response.get_data()) == (204, "queued", b"")
    (message,) = queued(fake_redis, settings)
    assert message["source"] == SOURCE and message["events"]


def test_a_repeat_is_a_duplicate_and_an_other_event_ignored(client, fake_redis, settings):
    post(client, fixture("chat_addmsguser", SOURCE))
    again = post(client, fixture("chat_addmsguser", SOURCE))
    ignored = post(client, fixture("chat_accept", SOURCE))
    assert (again.status_code, again.headers["X-Chathooks-Status"], again.get_data()) == (204, "duplicate", b"")
    assert (ignored.status_code, ignored.headers["X-Chathooks-Status"], ignored.get_data()) == (204, "ignored", b"")
    assert len(queued(fake_redis, settings)) == 1


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded", None])
def test_a_json_object_is_taken_with_any_of_lhcs_content_types(client, content_type):
    response = post(client, fixture("chat_addmsguser", SOURCE), content_type=content_type)
    assert response.status_code == 204


def test_no_content_type_at_all_is_taken(client):
    body = json.dumps(fixture("chat_addmsguser", SOURCE)).encode()
    response = client.open(URL, method="POST", data=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert "Content-Type" not in response.request.headers and response.status_code == 204


def test_another_content_type_is_415_with_an_empty_body(client):
    response = post(client, fixture("chat_addmsguser", SOURCE), content_type="application/xml")
    assert (response.status_code, response.get_data()) == (415, b"")


@pytest.mark.parametrize("token, scheme", [(None, None), ("", "Bearer"), ("wrong", "Bearer"), (TOKEN, "Basic"),
                                           (TOKEN + "x", "Bearer")])
def test_a_missing_or_wrong_bearer_token_is_401_with_an_empty_body(client, fake_redis, settings, token, scheme):
    headers = {"Authorization": f"{scheme} {token}"} if scheme else {}
    response = client.post(URL, data=json.dumps(fixture("chat_addmsguser", SOURCE)), headers=headers,
                           content_type="application/json")
    assert (response.status_code, response.get_data()) == (401, b"")
    assert queued(fake_redis, settings) == []


def test_every_token_of_the_list_is_accepted(client):
    assert post(client, fixture("chat_addmsguser", SOURCE), token="older").status_code == 204


def test_without_lhc_secrets_the_route_is_401(fake_redis):
    client = create_app(make_settings(), redis_client=fake_redis).test_client()
    assert post(client, fixture("chat_addmsguser", SOURCE), token="").status_code == 401


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", json.dumps({"chat": {"id": "x"}}).encode(),
                                  json.dumps({"event": "chat.addmsguser", "chat": {"id": 1}, "msg": {"user_id": "a"}})])
def test_a_bad_body_is_400_with_an_empty_body_and_the_fields_in_the_log(client, fake_redis, settings, body, caplog):
    caplog.set_level(logging.WARNING)
    response = post(client, body)
    assert (response.status_code, response.get_data()) == (400, b"")
    assert "LHC call rejected (400" in caplog.text
    assert queued(fake_redis, settings) == []
    counters = {k.decode(): int(v) for k, v in fake_redis.hgetall(f"{settings.key_prefix}metrics").items()}
    assert counters["received:lhc"] == 1 and sum(v for k, v in counters.items() if k.startswith("rejected:")) == 1


def test_a_field_error_names_the_field_in_the_log(client, caplog):
    caplog.set_level(logging.WARNING)
    body = fixture("chat_addmsguser", SOURCE)
    body["msg"]["user_id"] = "nobody"
    assert post(client, body).status_code == 400
    assert '"msg": {"user_id"' in caplog.text


def test_a_body_over_the_limit_is_413_with_an_empty_body(fake_redis):
    client = create_app(make_settings(LHC_WEBHOOK_SECRETS=TOKEN, INGRESS_MAX_BYTES="1024"),
                        redis_client=fake_redis).test_client()
    body = fixture("chat_addmsguser", SOURCE)
    body["msg"]["msg"] = "x" * 4096
    response = post(client, body)
    assert (response.status_code, response.get_data()) == (413, b"")


def test_redis_down_is_503_with_an_empty_body(settings):
    client = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", timeout=0.2)).test_client()
    response = post(client, fixture("chat_addmsguser", SOURCE))
    assert (response.status_code, response.get_data()) == (503, b"")
    assert "Retry-After" in response.headers


def test_the_token_never_reaches_the_log_or_the_queue(client, fake_redis, settings, caplog):
    caplog.set_level(logging.DEBUG)
    post(client, fixture("chat_addmsguser", SOURCE))
    post(client, b"junk")
    post(client, fixture("chat_addmsguser", SOURCE), token="wrong-" + TOKEN)
    assert TOKEN not in caplog.text
    assert all(TOKEN.encode() not in fake_redis.dump(k) for k in fake_redis.keys("*"))
