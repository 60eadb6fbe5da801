"""GET|POST /webhooks/chatbot: verification, every status, answers from the profile, queued once."""

from __future__ import annotations

import logging

import pytest
import redis

from app import create_app
from chathooks.keys import Keys
from chathooks.profiles import Profiles
from chathooks.redis_client import connect
from tests.conftest import make_settings
from tests.helpers import FIXTURES, REAL_REDIS_URL, fixture
from tests.unit.app.conftest import field_errors, queued

URL = "/webhooks/chatbot"
TOKEN = "cb-verify-t0ken"
SOURCE = "chatbot"


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    return make_settings(CHATBOT_WEBHOOK_TOKENS=f"old-token,{TOKEN}",
                         CHATHOOKS_RULES=str(FIXTURES / "rules" / "chatbot_example.yaml"))


def post(client, body, token=TOKEN, **kwargs):  # type: ignore[no-untyped-def]
    return client.post(URL, json=body, query_string={"token": token} if token is not None else None, **kwargs)


def on_real_redis(real_redis):  # type: ignore[no-untyped-def]
    """Settings whose keys are under the real Redis client's own prefix (deleted after the test)."""
    return make_settings(CHATBOT_WEBHOOK_TOKENS=TOKEN, CHATHOOKS_KEY_PREFIX=real_redis.prefix,
                         CHATHOOKS_QUEUE=f"{real_redis.prefix}events",
                         CHATHOOKS_RULES=str(FIXTURES / "rules" / "chatbot_example.yaml"))


def returning(fake_redis, settings) -> None:  # type: ignore[no-untyped-def]
    profiles = Profiles(fake_redis, Keys(settings.key_prefix), 3600, 600)
    for chat in ("C1", "C2"):
        profiles.seen("livechat", chat, email="jane@example.org", name="Jane Roe", at=1_756_720_800.0)
    profiles.rated("livechat", "C2", "bad", 1_756_720_900.0)


# --- verification --------------------------------------------------------------------------


def test_verification_answers_exactly_the_challenge_as_text(client):
    response = client.get(URL, query_string={"challenge": "Zx81kq", "token": TOKEN})
    assert response.status_code == 200
    assert response.mimetype == "text/plain" and response.get_data(as_text=True) == "Zx81kq"


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + " ", TOKEN.upper()])
def test_verification_with_a_wrong_token_is_401(client, token):
    query = {"challenge": "Zx81kq", **({"token": token} if token is not None else {})}
    response = client.get(URL, query_string=query)
    assert response.status_code == 401 and response.is_json and "Zx81kq" not in response.get_data(as_text=True)


def test_every_token_of_the_list_is_accepted_for_rotation(client):
    assert client.get(URL, query_string={"challenge": "c", "token": "old-token"}).status_code == 200


@pytest.mark.parametrize("challenge", [None, "", "x" * 1025])
def test_verification_without_a_usable_challenge_is_400(client, challenge):
    query = {"token": TOKEN, **({"challenge": challenge} if challenge is not None else {})}
    assert client.get(URL, query_string=query).status_code == 400


def test_without_tokens_configured_the_route_is_401(fake_redis):
    client = create_app(make_settings(), redis_client=fake_redis).test_client()
    assert client.get(URL, query_string={"challenge": "c", "token": ""}).status_code == 401
    assert post(client, fixture("webhook_block", SOURCE), token="").status_code == 401


# --- answers -------------------------------------------------------------------------------


def test_a_returning_customer_is_answered_from_their_profile(client, fake_redis, settings):
    returning(fake_redis, settings)
    response = post(client, fixture("webhook_block", SOURCE))
    assert response.status_code == 200
    assert response.json == {"responses": [{"type": "text", "message": "Welcome back, Jane Roe!"}],
                             "attributes": {"returning_customer": "true", "previous_chats": "2",
                                            "last_rating": "bad"}}


def test_the_profile_is_found_by_external_id_when_there_is_no_email(client, fake_redis, settings):
    profiles = Profiles(fake_redis, Keys(settings.key_prefix), 3600, 600)
    profiles.seen("livechat", "C1", customer_id="0e6b2f1c-9a7d-4c3e-8b5a-1f2d3c4b5a69", name="Jane", at=1.0)
    response = post(client, fixture("webhook_block.external_id_only", SOURCE))
    assert response.json["attributes"]["previous_chats"] == "1"


def test_a_new_customer_matches_no_rule_and_gets_empty_attributes(client):
    assert post(client, fixture("webhook_block", SOURCE)).json == {"attributes": {}}


def test_a_call_is_queued_once_and_a_repeat_answered_again_the_same_way(client, fake_redis, settings):
    returning(fake_redis, settings)
    first = post(client, fixture("webhook_block", SOURCE))
    again = post(client, fixture("webhook_block", SOURCE))
    assert first.json == again.json
    (message,) = queued(fake_redis, settings)
    (event,) = message["events"]
    assert (message["source"], event["kind"], event["customer_email"]) == (SOURCE, "lead", "jane@example.org")
    counters = {k.decode(): int(v) for k, v in fake_redis.hgetall(f"{settings.key_prefix}metrics").items()}
    assert (counters["queued:chatbot"], counters["duplicate:chatbot"]) == (1, 1)


def test_the_answer_reads_only_redis_and_the_token_never_reaches_queue_or_logs(client, fake_redis, settings, caplog):
    caplog.set_level(logging.DEBUG)
    post(client, fixture("webhook_block", SOURCE))
    post(client, fixture("webhook_block", SOURCE), token="wrong-" + TOKEN)
    assert TOKEN not in caplog.text
    assert all(TOKEN.encode() not in fake_redis.dump(k) for k in fake_redis.keys("*"))


# --- rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "nope"])
def test_a_wrong_token_is_401_and_nothing_is_queued(client, fake_redis, settings, token):
    response = post(client, fixture("webhook_block", SOURCE), token=token)
    assert response.status_code == 401 and response.is_json
    assert queued(fake_redis, settings) == []


def test_the_token_is_checked_before_the_body(client):
    assert client.post(URL, data=b"junk", content_type="text/plain").status_code == 401


@pytest.mark.parametrize("mutate, path", [
    (lambda b: b.pop("messageId"), ("messageId",)),
    (lambda b: b.pop("node"), ("node",)),
    (lambda b: b["node"].__setitem__("webhookName", ["x"]), ("node", "webhookName")),
    (lambda b: b.__setitem__("attributes", []), ("attributes",)),
])
def test_a_malformed_call_is_400_naming_the_field(client, fake_redis, settings, mutate, path):
    body = fixture("webhook_block", SOURCE)
    mutate(body)
    field_errors(post(client, body), *path)
    assert queued(fake_redis, settings) == []


def test_a_non_json_body_is_415_and_a_huge_one_413(fake_redis, settings):
    small = make_settings(CHATBOT_WEBHOOK_TOKENS=TOKEN, INGRESS_MAX_BYTES="1024")
    client = create_app(small, redis_client=fake_redis).test_client()
    assert client.post(URL, data="{}", content_type="text/plain", query_string={"token": TOKEN}).status_code == 415
    body = fixture("webhook_block", SOURCE)
    body["attributes"]["big"] = "x" * 2048
    assert post(client, body).status_code == 413


def test_redis_down_is_503(settings):
    client = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", timeout=0.2)).test_client()
    response = post(client, fixture("webhook_block", SOURCE))
    assert response.status_code == 503 and response.is_json and "Retry-After" in response.headers


def test_a_call_is_queued_and_its_profile_read_in_one_round_trip(real_redis, monkeypatch):
    settings = on_real_redis(real_redis)
    returning(real_redis, settings)
    client = create_app(settings, redis_client=real_redis).test_client()
    expected = post(client, fixture("webhook_block", SOURCE)).json  # the scripts loaded
    writes: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, *args, **kwargs):  # type: ignore[no-untyped-def]
        writes.append(command)
        return send(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    body = fixture("webhook_block", SOURCE)
    body["messageId"] += "-2"
    assert post(client, body).json == expected and len(writes) == 1
    assert len(queued(real_redis, settings)) == 2


def test_a_profile_that_cannot_be_read_is_503_and_the_call_queued_once(client, fake_redis, settings):
    fake_redis.set(f"{settings.key_prefix}profile:email:jane@example.org", "not a hash")
    for _ in range(2):  # ChatBot's retry: a duplicate
        response = post(client, fixture("webhook_block", SOURCE))
        assert response.status_code == 503 and "customer profiles unavailable" in response.json["error"]
    assert len(queued(fake_redis, settings)) == 1


def test_a_returning_customer_is_answered_the_same_on_resp3(real_redis):
    settings = on_real_redis(real_redis)
    returning(real_redis, settings)
    answers = []
    for protocol in (2, 3):
        client = redis.Redis.from_url(REAL_REDIS_URL, protocol=protocol)
        body = fixture("webhook_block", SOURCE)
        body["messageId"] += f"-resp{protocol}"
        response = post(create_app(settings, redis_client=client).test_client(), body)
        assert response.status_code == 200
        answers.append(response.json)
    assert answers[0] == answers[1] and answers[0]["attributes"]
