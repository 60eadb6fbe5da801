"""LiveChatClient against FakeLiveChat: URLs, auth forms, bot authorship, token caching, error classification."""

from __future__ import annotations

import base64
import json

import fakeredis
import pytest
import requests

from chathooks.http import OutboundError
from chathooks.platforms.livechat.client import BOT_TOKEN_LIFETIME, LiveChatClient, MemoryTokenCache, RedisTokenCache
from tests.fakes.livechat import FakeLiveChat

CHAT = {
    "id": "RX8QK2MZ1A",
    "users": [{"id": "c0ffee00-0000-4000-8000-000000000001", "type": "customer", "email": "ada@example.com"}],
    "thread": {"id": "RX8QK2MZ1B", "events": [{"id": "RX8QK2MZ1B_1", "type": "message", "text": "refund please"}]},
}
MESSAGE = {"type": "message", "text": "An agent will be with you shortly."}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["3.5", "3.6"])
def fake(request):
    with FakeLiveChat(api_version=request.param) as server:
        server.seed_chat(CHAT)
        yield server


@pytest.fixture
def fake36():
    with FakeLiveChat(api_version="3.6") as server:
        server.seed_chat(CHAT)
        yield server


def caught(call, *args, **kwargs) -> OutboundError:
    with pytest.raises(OutboundError) as info:
        call(*args, **kwargs)
    return info.value


# URLs and agent auth


def test_agent_and_configuration_urls(fake):
    client = LiveChatClient(fake.settings())
    client.tag_thread(CHAT["id"], CHAT["thread"]["id"], "refund")
    client.list_webhooks(fake.client_id)
    paths = [(r.method, r.path) for r in fake.calls()]
    v = fake.api_version
    assert paths == [("POST", f"/v{v}/agent/action/tag_thread"), ("POST", f"/v{v}/configuration/action/list_webhooks")]
    expected = {"chat_id": CHAT["id"], "thread_id": CHAT["thread"]["id"], "tag": "refund"}
    assert fake.calls("tag_thread")[0].json == expected
    assert fake.calls("tag_thread")[0].headers["Content-Type"] == "application/json"


def test_pat_is_basic_auth(fake):
    LiveChatClient(fake.settings(auth="pat")).get_chat(CHAT["id"])
    expected = base64.b64encode(f"{fake.account_id}:{fake.pat}".encode()).decode()
    headers = fake.calls("get_chat")[0].headers
    assert headers["Authorization"] == f"Basic {expected}"
    assert "X-Author-Id" not in headers and "X-Region" not in headers


def test_access_token_is_bearer_with_region(fake):
    LiveChatClient(fake.settings(auth="token")).get_chat(CHAT["id"])
    headers = fake.calls("get_chat")[0].headers
    assert headers["Authorization"] == f"Bearer {fake.access_token}"
    assert headers["X-Region"] == "dal"


def test_pat_wins_over_access_token(fake):
    LiveChatClient(fake.settings(auth="pat", access_token=fake.access_token)).get_chat(CHAT["id"])
    assert fake.calls("get_chat")[0].headers["Authorization"].startswith("Basic ")


def test_no_credentials_fails_before_sending(fake):
    error = caught(LiveChatClient(fake.settings(auth="none")).get_chat, CHAT["id"])
    assert (error.type, error.transient) == ("configuration", False)
    assert fake.calls() == []


def test_wrong_credentials_are_an_authentication_error(fake):
    error = caught(LiveChatClient(fake.settings(pat="wrong-pat-value")).get_chat, CHAT["id"])
    assert (error.type, error.status, error.transient) == ("authentication", 401, False)


def test_wrong_version_is_not_found(fake):
    other = "3.5" if fake.api_version == "3.6" else "3.6"
    error = caught(LiveChatClient(fake.settings(api_version=other)).get_chat, CHAT["id"])
    assert (error.type, error.status, error.transient) == ("not_found", 404, False)


# Agent Chat API


def test_get_chat_and_tag_thread(fake):
    client = LiveChatClient(fake.settings())
    assert client.get_chat(CHAT["id"])["thread"]["events"][0]["text"] == "refund please"
    client.tag_thread(CHAT["id"], CHAT["thread"]["id"], "refund")
    client.tag_thread(CHAT["id"], CHAT["thread"]["id"], "refund")
    assert client.get_chat(CHAT["id"], CHAT["thread"]["id"])["thread"]["tags"] == ["refund"]


def test_send_event_as_agent(fake):
    event_id = LiveChatClient(fake.settings()).send_event(CHAT["id"], MESSAGE, as_bot=False)
    event = fake.chat(CHAT["id"])["thread"]["events"][-1]
    assert (event["id"], event["author_id"], event["text"]) == (event_id, fake.agent_id, MESSAGE["text"])
    assert "X-Author-Id" not in fake.calls("send_event")[0].headers


def test_routing_statuses(fake):
    client = LiveChatClient(fake.settings())
    client.set_routing_status("not_accepting_chats", fake.bot_id)
    statuses = {s["agent_id"]: s["status"] for s in client.list_routing_statuses(group_ids=[0])}
    assert statuses[fake.bot_id] == "not_accepting_chats"
    assert fake.calls("list_routing_statuses")[0].json == {"filters": {"group_ids": [0]}}
    assert fake.calls("set_routing_status")[0].json == {"status": "not_accepting_chats", "agent_id": fake.bot_id}


def test_bot_sets_its_own_routing_status(fake):
    LiveChatClient(fake.settings()).set_routing_status("offline", as_bot=True)
    assert fake.routing_statuses[fake.bot_id] == "offline"
    assert fake.calls("set_routing_status")[0].json == {"status": "offline"}


# Bot authorship


def test_v35_bot_uses_author_header():
    with FakeLiveChat(api_version="3.5") as fake:
        fake.seed_chat(CHAT)
        LiveChatClient(fake.settings()).send_event(CHAT["id"], MESSAGE)
        headers = fake.calls("send_event")[0].headers
        assert headers["X-Author-Id"] == fake.bot_id and headers["Authorization"].startswith("Basic ")
        assert fake.chat(CHAT["id"])["thread"]["events"][-1]["author_id"] == fake.bot_id
        assert fake.calls("issue_bot_token") == []


def test_v36_bot_token_issued_once_then_reused(fake36):
    client = LiveChatClient(fake36.settings())
    first = client.send_event(CHAT["id"], MESSAGE)
    second = client.send_event(CHAT["id"], MESSAGE)
    assert first != second
    (issue,) = fake36.calls("issue_bot_token")
    assert issue.headers["Authorization"].startswith("Basic ")  # the normal auth rides along
    assert issue.json == {
        "bot_id": fake36.bot_id, "bot_secret": fake36.bot_secret,
        "client_id": fake36.client_id, "organization_id": fake36.organization_id,
    }
    (token,) = fake36.bot_tokens
    for call in fake36.calls("send_event"):
        assert call.headers["Authorization"] == f"Bearer {token}"
        assert "X-Author-Id" not in call.headers
    assert [e["author_id"] for e in fake36.chat(CHAT["id"])["thread"]["events"][1:]] == [fake36.bot_id] * 2


def test_v36_bot_token_renewed_within_an_hour_of_expiry(fake36):
    clock = Clock()
    client = LiveChatClient(fake36.settings(), clock=clock)
    client.send_event(CHAT["id"], MESSAGE)
    clock.now += BOT_TOKEN_LIFETIME - 3601  # just over an hour left: keep it
    client.send_event(CHAT["id"], MESSAGE)
    assert len(fake36.calls("issue_bot_token")) == 1
    clock.now += 2  # under an hour left: renew
    client.send_event(CHAT["id"], MESSAGE)
    assert len(fake36.calls("issue_bot_token")) == 2
    tokens = [c.headers["Authorization"] for c in fake36.calls("send_event")]
    assert tokens[0] == tokens[1] != tokens[2]


def test_v36_rejected_token_is_replaced_once(fake36):
    client = LiveChatClient(fake36.settings())
    client.send_event(CHAT["id"], MESSAGE)
    fake36.expire_bot_tokens()
    client.send_event(CHAT["id"], MESSAGE)
    assert len(fake36.calls("issue_bot_token")) == 2
    first, rejected, replayed = [c.headers["Authorization"] for c in fake36.calls("send_event")]
    assert first == rejected != replayed
    assert len(fake36.chat(CHAT["id"])["thread"]["events"]) == 3  # the seeded one plus two, no duplicate


def test_v36_fresh_token_rejected_is_not_retried(fake36):
    client = LiveChatClient(fake36.settings())
    fake36.fail_next("send_event", error_type="authentication")
    assert caught(client.send_event, CHAT["id"], MESSAGE).type == "authentication"
    assert len(fake36.calls("send_event")) == 1


def test_v36_bot_needs_its_secret(fake36):
    error = caught(LiveChatClient(fake36.settings(bot_secret=None)).send_event, CHAT["id"], MESSAGE)
    assert (error.type, error.transient) == ("configuration", False)
    assert fake36.calls() == []


def test_v36_wrong_bot_secret_is_final(fake36):
    client = LiveChatClient(fake36.settings(bot_secret="not-the-secret"))
    error = caught(client.send_event, CHAT["id"], MESSAGE)
    assert (error.method, error.type, error.transient) == ("issue_bot_token", "authentication", False)
    assert "not-the-secret" not in str(error)


def test_v36_issue_bot_token_without_agent_credentials(fake36):
    token = LiveChatClient(fake36.settings(auth="none")).issue_bot_token(
        fake36.bot_id, fake36.bot_secret, fake36.client_id, fake36.organization_id
    )
    assert token in fake36.bot_tokens
    assert "Authorization" not in fake36.calls("issue_bot_token")[0].headers


def test_redis_token_cache_shares_one_token_between_workers(fake36):
    clock = Clock()
    redis = fakeredis.FakeRedis()
    workers = [
        LiveChatClient(fake36.settings(), token_cache=RedisTokenCache(redis, "test:", clock=clock), clock=clock)
        for _ in range(2)
    ]
    for worker in workers:
        worker.send_event(CHAT["id"], MESSAGE)
    assert len(fake36.calls("issue_bot_token")) == 1
    key = f"test:livechat:bot_token:{fake36.bot_id}"
    stored = json.loads(redis.get(key))
    assert stored == {"token": next(iter(fake36.bot_tokens)), "expires_at": clock.now + BOT_TOKEN_LIFETIME}
    assert redis.pttl(key) == pytest.approx(BOT_TOKEN_LIFETIME * 1000, abs=1000)


def test_redis_token_cache_expiry_and_garbage():
    clock = Clock()
    redis = fakeredis.FakeRedis(decode_responses=True)
    cache = RedisTokenCache(redis, "p:", clock=clock)
    cache.set("bot", "tok", clock.now + 10)
    assert cache.get("bot") == ("tok", clock.now + 10)
    assert 0 < redis.pttl("p:livechat:bot_token:bot") <= 10_000
    cache.set("bot", "tok", clock.now - 1)
    assert cache.get("bot") is None and not redis.exists("p:livechat:bot_token:bot")
    redis.set("p:livechat:bot_token:bot", "not json")
    assert cache.get("bot") is None


def test_redis_token_cache_outage_only_costs_a_token(fake36):
    server = fakeredis.FakeServer()
    server.connected = False
    down = fakeredis.FakeRedis(server=server)
    client = LiveChatClient(fake36.settings(), token_cache=RedisTokenCache(down, "p:"))
    client.send_event(CHAT["id"], MESSAGE)
    client.send_event(CHAT["id"], MESSAGE)
    assert len(fake36.calls("issue_bot_token")) == 2


def test_memory_token_cache():
    cache = MemoryTokenCache()
    assert cache.get("bot") is None
    cache.set("bot", "tok", 5.0)
    assert cache.get("bot") == ("tok", 5.0)


def test_fake_refuses_author_header_in_v36(fake36):
    response = requests.post(
        f"{fake36.url}/v3.6/agent/action/get_chat",
        json={"chat_id": CHAT["id"]},
        headers={"Authorization": f"Bearer {fake36.access_token}", "X-Author-Id": fake36.bot_id},
        timeout=5,
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "validation"


def test_fake_v35_refuses_unknown_author():
    with FakeLiveChat(api_version="3.5") as fake:
        fake.seed_chat(CHAT)
        error = caught(LiveChatClient(fake.settings(bot_id="someone-else")).send_event, CHAT["id"], MESSAGE)
        assert error.type == "authentication"


# Errors


def test_fake_names_the_missing_parameter(fake):
    response = requests.post(
        f"{fake.url}/v{fake.api_version}/agent/action/tag_thread",
        json={"chat_id": CHAT["id"], "tag": "refund"},
        headers={"Authorization": f"Bearer {fake.access_token}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json() == {"error": {"type": "validation", "message": "`thread_id` is required"}}


def test_validation_is_final(fake):
    error = caught(LiveChatClient(fake.settings()).send_event, CHAT["id"], {"type": "message"}, as_bot=False)
    assert (error.type, error.status, error.transient) == ("validation", 400, False)
    assert "event.text" in error.message


def test_not_found_and_chat_inactive_are_final(fake):
    client = LiveChatClient(fake.settings())
    assert caught(client.get_chat, "NOPE").type == "not_found"
    fake.deactivate(CHAT["id"])
    error = caught(client.send_event, CHAT["id"], MESSAGE)
    assert (error.type, error.status, error.transient) == ("chat_inactive", 422, False)


def test_rate_limit_is_transient_with_retry_after(fake):
    fake.fail_next("tag_thread", error_type="too_many_requests", retry_after=7)
    error = caught(LiveChatClient(fake.settings()).tag_thread, CHAT["id"], CHAT["thread"]["id"], "refund")
    assert (error.method, error.type, error.status, error.transient, error.retry_after) == (
        "tag_thread", "too_many_requests", 429, True, 7.0,
    )


@pytest.mark.parametrize(
    ("error_type", "status"), [("internal", 500), ("service_unavailable", 503), ("request_timeout", 408)]
)
def test_server_side_errors_are_transient(fake, error_type, status):
    fake.fail_next("get_chat", error_type=error_type)
    error = caught(LiveChatClient(fake.settings()).get_chat, CHAT["id"])
    assert (error.type, error.status, error.transient) == (error_type, status, True)


def test_error_type_decides_over_status(fake):
    fake.fail_next("get_chat", status=500, error_type="validation")
    assert caught(LiveChatClient(fake.settings()).get_chat, CHAT["id"]).transient is False


def test_read_timeout_is_transient(fake):
    fake.fail_next("get_chat", delay=0.5)
    error = caught(LiveChatClient(fake.settings(), timeout=(1.0, 0.2)).get_chat, CHAT["id"])
    assert (error.type, error.transient, error.status) == ("timeout", True, None)


def test_closed_connection_is_transient(fake):
    fake.fail_next("get_chat", close=True)
    error = caught(LiveChatClient(fake.settings()).get_chat, CHAT["id"])
    assert (error.type, error.transient) == ("connection", True)


def test_no_secret_in_errors(fake36):
    client = LiveChatClient(fake36.settings(access_token=fake36.access_token))
    client.send_event(CHAT["id"], MESSAGE)
    (token,) = fake36.bot_tokens
    basic = base64.b64encode(f"{fake36.account_id}:{fake36.pat}".encode()).decode()
    # Credentials echoed back by a careless server.
    secrets = [fake36.pat, basic, fake36.bot_secret, token, fake36.access_token, "hook-secret-123"]
    fake36.fail_next("*", error_type="validation", message=" ".join(secrets), times=3)
    errors = [
        caught(client.send_event, CHAT["id"], MESSAGE),
        caught(client.get_chat, CHAT["id"]),
        caught(client.register_webhook, "incoming_chat", "https://hooks.example.net/lc", "hook-secret-123", "client"),
    ]
    # A server can only echo what it was sent: the bot token goes with bot calls, the hook secret with its registration.
    hook, agent = secrets[-1:], [fake36.pat, basic, fake36.bot_secret, fake36.access_token]
    for error, known in zip(errors, (agent + [token], agent, agent + hook)):
        for text in (str(error), repr(error), json.dumps(error.to_dict())):
            assert not [s for s in known if s in text], text


# Configuration API


def test_webhooks(fake):
    client = LiveChatClient(fake.settings())
    webhook_id = client.register_webhook(
        "incoming_chat", "https://hooks.example.net/lc", "hook-secret-123", fake.client_id,
        filters={"author_type": "customer"}, additional_data=["chat_properties"], description="chathooks",
    )
    assert fake.calls("register_webhook")[0].json == {
        "action": "incoming_chat", "url": "https://hooks.example.net/lc", "secret_key": "hook-secret-123",
        "owner_client_id": fake.client_id, "type": "license", "filters": {"author_type": "customer"},
        "additional_data": ["chat_properties"], "description": "chathooks",
    }
    (listed,) = client.list_webhooks(fake.client_id)
    assert (listed["id"], listed["action"], listed["type"]) == (webhook_id, "incoming_chat", "license")
    assert client.list_webhooks("another-client") == []
    error = caught(client.register_webhook, "no_such_action", "https://x.example", "k", fake.client_id)
    assert error.type == "validation"


def test_enable_license_webhooks(fake):
    LiveChatClient(fake.settings()).enable_license_webhooks(fake.client_id)
    assert fake.license_webhooks == {fake.client_id: True}


def test_bots(fake):
    client = LiveChatClient(fake.settings())
    created = client.create_bot("Nudger", fake.client_id, max_chats_count=10)
    assert set(created) == {"id", "secret"}
    expected = {"name": "Nudger", "owner_client_id": fake.client_id, "max_chats_count": 10}
    assert fake.calls("create_bot")[0].json == expected
    names = {b["id"]: b["name"] for b in client.list_bots()}
    assert names[created["id"]] == "Nudger" and fake.bot_id in names
    token = client.issue_bot_token(created["id"], created["secret"], fake.client_id, fake.organization_id)
    assert fake.bot_tokens[token] == created["id"]


def test_configuration_api_refuses_bot_tokens(fake36):
    client = LiveChatClient(fake36.settings())
    client.send_event(CHAT["id"], MESSAGE)
    (token,) = fake36.bot_tokens
    response = requests.post(
        f"{fake36.url}/v3.6/configuration/action/list_bots",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.json()["error"]["type"] == "authorization"
