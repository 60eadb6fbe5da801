"""TenantClient against FakeLiveChat's organizations and a linked FakeAccounts: each organization's own token,
region and bot; refresh-and-retry on authentication; its own share of the rate; no token in an error."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from chathooks.http import OutboundError
from chathooks.platforms.livechat import fairness
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.client import LiveChatClient, MemoryTokenCache
from chathooks.platforms.livechat.tenant_client import TenantClient
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.platforms.livechat.tokens import TenantInactive, TenantTokens
from chathooks.rate_limit import RateLimiter
from chathooks.settings import MarketplaceSettings
from tests.unit.chathooks.platforms.livechat.conftest import KEY, SECRET
from tests.fakes.http_server import Reply
from tests.fakes.livechat import ERROR_STATUS, FakeLiveChat
from tests.helpers import Clock

ORG_A = "7d1e0c3a-0000-4000-8000-00000000000a"
ORG_B = "7d1e0c3a-0000-4000-8000-00000000000b"
CHAT_A = {"id": "RX8QK2MZ1A", "thread": {"id": "RX8QK2MZ1B"}}
CHAT_B = {"id": "SY9RL3NA2B", "thread": {"id": "SY9RL3NA2C"}}
MESSAGE = {"type": "message", "text": "An agent will be with you shortly."}



@pytest.fixture
def api_version() -> str:
    return "3.6"


@pytest.fixture
def lc(api_version):
    with FakeLiveChat(api_version=api_version) as server:
        server.seed_chat(CHAT_A, organization=ORG_A)
        server.seed_chat(CHAT_B, organization=ORG_B)
        yield server


@pytest.fixture
def tokens(accounts, lc, fake_redis, settings) -> TenantTokens:
    market = MarketplaceSettings(client_id=lc.client_id, client_secret=SECRET, public_url="https://hooks.example.com",
                                 secret_keys=(KEY,), accounts_url=accounts.url)
    store = TenantStore(fake_redis, settings.key_prefix, [KEY])
    tokens = TenantTokens(store, AccountsClient(market, timeout=5), fake_redis, settings.key_prefix,
                          poll_seconds=0.01)
    for org in (ORG_A, ORG_B):
        tenant = store.authorised(tokens._accounts.exchange(accounts.authorize(org)))
        bot = LiveChatClient(lc.settings(auth="token", access_token=tenant.access_token)).create_bot("chathooks")
        store.update(org, status=Status.ACTIVE, bot_id=bot["id"], bot_secret=bot["secret"])
    return tokens


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_of(lc: FakeLiveChat, tokens: TenantTokens, org: str, limiter: RateLimiter | None = None) -> TenantClient:
    return TenantClient(lc.settings(auth="none"), tokens.store.get(org), tokens, limiter, timeout=5,
                        token_cache=MemoryTokenCache())


@pytest.fixture
def client_a(lc, tokens) -> TenantClient:
    return client_of(lc, tokens, ORG_A)


def caught(call, *args) -> OutboundError:
    with pytest.raises(OutboundError) as info:
        call(*args)
    return info.value


def texts(error: OutboundError) -> list[str]:
    return [str(error), repr(error), json.dumps(error.to_dict())]


# Each organization's credentials


def test_calls_carry_the_organizations_own_token_and_region(lc, tokens, client_a):
    lc.grant(ORG_B, "fra:access-b-5d6e7f80")
    tokens.store.update(ORG_B, access_token="fra:access-b-5d6e7f80", region="fra")
    client_a.get_chat(CHAT_A["id"])
    client_of(lc, tokens, ORG_B).get_chat(CHAT_B["id"])
    a, b = (r.headers for r in lc.calls("get_chat"))
    assert (a["Authorization"], a["X-Region"]) == (f"Bearer {tokens.store.get(ORG_A).access_token}", "dal")
    assert (b["Authorization"], b["X-Region"]) == ("Bearer fra:access-b-5d6e7f80", "fra")
    assert "X-Author-Id" not in a


def test_a_misdirected_request_is_retried_once_in_the_region_it_names_and_remembered(lc, tokens, client_a):
    lc.set_region(ORG_A, "fra")  # its token says dal; LiveChat keeps it in fra
    client_a.get_chat(CHAT_A["id"])
    first, retried = lc.calls("get_chat")
    assert (first.headers["X-Region"], retried.headers["X-Region"]) == ("dal", "fra")
    assert tokens.store.get(ORG_A).region == "fra"
    client_a.tag_thread(CHAT_A["id"], CHAT_A["thread"]["id"], "refund")
    (tagged,) = lc.calls("tag_thread")
    assert tagged.headers["X-Region"] == "fra"  # straight there from now on


def test_a_misdirected_request_naming_no_usable_region_is_not_retried(lc, tokens, client_a):
    lc.set_region(ORG_A, "fra\r\nX-Evil: 1")
    assert caught(client_a.get_chat, CHAT_A["id"]).type == "misdirected_request"
    assert len(lc.calls("get_chat")) == 1 and tokens.store.get(ORG_A).region == "dal"


def test_another_organizations_chat_is_out_of_reach(client_a):
    assert caught(client_a.get_chat, CHAT_B["id"]).type == "authorization"


def test_a_tenant_that_cannot_act_sends_nothing(lc, tokens, client_a):
    tokens.store.update(ORG_A, status=Status.NEEDS_REAUTH)
    with pytest.raises(TenantInactive) as info:
        client_a.get_chat(CHAT_A["id"])
    assert info.value.reason == "needs_reauth" and lc.calls("get_chat") == []


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(lc, accounts, tokens, client_a):
    stale = tokens.store.get(ORG_A).access_token
    accounts.expire_access_token(stale)
    assert client_a.get_chat(CHAT_A["id"])["id"] == CHAT_A["id"]
    fresh = tokens.store.get(ORG_A).access_token
    assert fresh != stale and accounts.refreshes == 1
    assert [r.headers["Authorization"] for r in lc.calls("get_chat")] == [f"Bearer {stale}", f"Bearer {fresh}"]
    client_a.tag_thread(CHAT_A["id"], CHAT_A["thread"]["id"], "refund")
    assert lc.calls("tag_thread")[0].headers["Authorization"] == f"Bearer {fresh}" and accounts.refreshes == 1


def test_a_refreshed_token_refused_again_is_not_retried_again(lc, accounts, client_a):
    lc.fail_next("get_chat", error_type="authentication", times=2)
    error = caught(client_a.get_chat, CHAT_A["id"])
    assert (error.type, error.transient) == ("authentication", False)
    assert len(lc.calls("get_chat")) == 2 and accounts.refreshes == 1


def test_an_authentication_error_after_the_grant_was_withdrawn_needs_reauth(lc, accounts, tokens, client_a):
    accounts.revoke_grant(ORG_A)
    with pytest.raises(TenantInactive) as info:
        client_a.get_chat(CHAT_A["id"])
    assert info.value.reason == "needs_reauth" and len(lc.calls("get_chat")) == 1
    assert tokens.store.status(ORG_A) is Status.NEEDS_REAUTH
    assert tokens.store.status(ORG_B) is Status.ACTIVE


# The organization's bot


def test_v36_bot_messages_go_with_a_token_of_the_organizations_bot(lc, tokens, client_a):
    tenant_a, tenant_b = tokens.store.get(ORG_A), tokens.store.get(ORG_B)
    client_a.send_event(CHAT_A["id"], MESSAGE)
    client_of(lc, tokens, ORG_B).send_event(CHAT_B["id"], MESSAGE)
    assert lc.chat(CHAT_A["id"])["thread"]["events"][-1]["author_id"] == tenant_a.bot_id
    assert lc.chat(CHAT_B["id"])["thread"]["events"][-1]["author_id"] == tenant_b.bot_id
    issued = lc.calls("issue_bot_token")[0]
    assert issued.json == {"bot_id": tenant_a.bot_id, "bot_secret": tenant_a.bot_secret, "client_id": lc.client_id,
                           "organization_id": ORG_A}
    assert issued.headers["Authorization"] == f"Bearer {tenant_a.access_token}"
    sent = lc.calls("send_event")[0].headers["Authorization"].removeprefix("Bearer ")
    assert sent != tenant_a.access_token and lc.bot_tokens[sent] == tenant_a.bot_id
    assert lc.organization_of_token(sent) == ORG_A


def test_a_dead_bot_token_is_reissued_without_a_refresh(lc, accounts, client_a):
    client_a.send_event(CHAT_A["id"], MESSAGE)
    lc.expire_bot_tokens()
    client_a.send_event(CHAT_A["id"], MESSAGE)
    assert len(lc.calls("issue_bot_token")) == 2 and len(lc.calls("send_event")) == 3
    assert accounts.refreshes == 0


def test_issuing_a_bot_token_refreshes_an_expired_access_token(lc, accounts, tokens, client_a):
    accounts.expire_access_token(tokens.store.get(ORG_A).access_token)
    client_a.send_event(CHAT_A["id"], MESSAGE)
    assert accounts.refreshes == 1 and len(lc.calls("issue_bot_token")) == 2
    assert lc.chat(CHAT_A["id"])["thread"]["events"][-1]["author_id"] == tokens.store.get(ORG_A).bot_id


@pytest.mark.parametrize("api_version", ["3.5"])
def test_v35_bot_messages_name_the_organizations_bot(lc, tokens, client_a):
    tenant = tokens.store.get(ORG_A)
    client_a.send_event(CHAT_A["id"], MESSAGE)
    headers = lc.calls("send_event")[0].headers
    assert (headers["Authorization"], headers["X-Author-Id"]) == (f"Bearer {tenant.access_token}", tenant.bot_id)
    assert lc.chat(CHAT_A["id"])["thread"]["events"][-1]["author_id"] == tenant.bot_id


# Rate


def test_over_the_rate_is_a_transient_rate_limited_with_retry_after(lc, tokens, fake_redis, settings, clock):
    limiter = RateLimiter(fake_redis, settings.key_prefix, rate=0.5, clock=clock)
    client = client_of(lc, tokens, ORG_A, limiter)
    client.get_chat(CHAT_A["id"])
    error = caught(client.get_chat, CHAT_A["id"])
    assert (error.type, error.transient, error.retry_after) == ("rate_limited", True, 2.0)
    assert ORG_A in error.message and len(lc.calls("get_chat")) == 1
    client_of(lc, tokens, ORG_B, limiter).get_chat(CHAT_B["id"])  # another organization's budget
    clock.now += 2
    client.get_chat(CHAT_A["id"])
    assert len(lc.calls("get_chat")) == 3


def test_a_short_wait_for_the_rate_is_waited(lc, tokens, fake_redis, settings, clock, monkeypatch):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(fairness, "time", SimpleNamespace(sleep=sleep, time=clock))
    client = client_of(lc, tokens, ORG_A, RateLimiter(fake_redis, settings.key_prefix, rate=2, clock=clock))
    for _ in range(3):
        client.get_chat(CHAT_A["id"])
    assert slept == [0.5] and len(lc.calls("get_chat")) == 3


def test_a_burst_against_busy_peers_gives_up_rate_limited(lc, tokens, fake_redis, settings, clock, monkeypatch):
    limiter = RateLimiter(fake_redis, settings.key_prefix, rate=2, clock=clock)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # while it waits, another worker of the organization takes the token
        slept.append(seconds)
        clock.now += seconds
        assert limiter.wait(ORG_A) == 0

    monkeypatch.setattr(fairness, "time", SimpleNamespace(sleep=sleep, time=clock))
    client = client_of(lc, tokens, ORG_A, limiter)
    client.get_chat(CHAT_A["id"])
    client.get_chat(CHAT_A["id"])
    error = caught(client.get_chat, CHAT_A["id"])
    assert (error.type, error.transient, error.retry_after) == ("rate_limited", True, 0.5)
    assert slept == [0.5, 0.5, 0.5] and len(lc.calls("get_chat")) == 2


def test_too_many_requests_backs_off_that_organization_only(lc, tokens, fake_redis, settings, clock):
    limiter = RateLimiter(fake_redis, settings.key_prefix, rate=100, clock=clock)
    client_a, client_b = client_of(lc, tokens, ORG_A, limiter), client_of(lc, tokens, ORG_B, limiter)
    lc.fail_next("get_chat", error_type="too_many_requests", retry_after=30)
    error = caught(client_a.get_chat, CHAT_A["id"])
    assert (error.type, error.transient, error.retry_after) == ("too_many_requests", True, 30.0)
    again = caught(client_a.get_chat, CHAT_A["id"])
    assert (again.type, again.transient) == ("rate_limited", True) and 29 < again.retry_after <= 30
    assert len(lc.calls("get_chat")) == 1
    client_b.get_chat(CHAT_B["id"])
    assert len(lc.calls("get_chat")) == 2


def test_too_many_requests_without_retry_after_backs_off_a_while(lc, tokens, fake_redis, settings, clock):
    limiter = RateLimiter(fake_redis, settings.key_prefix, rate=100, clock=clock)
    lc.fail_next("tag_thread", error_type="too_many_requests")
    caught(client_of(lc, tokens, ORG_A, limiter).tag_thread, CHAT_A["id"], CHAT_A["thread"]["id"], "refund")
    assert fairness.BACK_OFF - 0.5 < limiter.wait(ORG_A) <= fairness.BACK_OFF
    assert limiter.wait(ORG_B) == 0


# Secrets


def echo_credentials(monkeypatch, lc: FakeLiveChat, refuse_first: bool = False, passthrough=()) -> None:
    """A careless LiveChat that echoes the credentials and body it was sent in every error."""
    real, refused = lc.handle, []

    def handle(request):
        if request.route in passthrough:
            return real(request)
        kind = "validation" if refused or not refuse_first else "authentication"
        refused.append(kind)
        message = f"refused {request.headers.get('Authorization')} for {json.dumps(request.json)}"
        return Reply(ERROR_STATUS[kind], {"error": {"type": kind, "message": message}})

    monkeypatch.setattr(lc, "handle", handle)


def test_no_token_in_an_error_after_a_refresh(lc, accounts, tokens, client_a, monkeypatch):
    stale = tokens.store.get(ORG_A).access_token
    echo_credentials(monkeypatch, lc, refuse_first=True)
    error = caught(client_a.get_chat, CHAT_A["id"])
    fresh = tokens.store.get(ORG_A).access_token
    assert error.type == "validation" and accounts.refreshes == 1 and fresh != stale
    for text in texts(error):
        assert stale not in text and fresh not in text and "refused" in text


def test_no_bot_secret_or_token_in_an_error(lc, tokens, client_a, monkeypatch):
    tenant = tokens.store.get(ORG_A)
    echo_credentials(monkeypatch, lc)
    issuing = caught(client_a.send_event, CHAT_A["id"], MESSAGE)
    assert issuing.method == "issue_bot_token"
    for text in texts(issuing):
        assert tenant.bot_secret not in text and tenant.access_token not in text

    monkeypatch.undo()
    client_a.send_event(CHAT_A["id"], MESSAGE)
    (bot_token,) = lc.bot_tokens
    echo_credentials(monkeypatch, lc)
    sending = caught(client_a.send_event, CHAT_A["id"], MESSAGE)
    assert sending.method == "send_event"
    for text in texts(sending):
        assert bot_token not in text and tenant.bot_secret not in text


def test_no_token_in_a_rate_limited_error(lc, tokens, fake_redis, settings, clock):
    client = client_of(lc, tokens, ORG_A, RateLimiter(fake_redis, settings.key_prefix, rate=0.5, clock=clock))
    client.get_chat(CHAT_A["id"])
    error = caught(client.get_chat, CHAT_A["id"])
    for text in texts(error):
        assert tokens.store.get(ORG_A).access_token not in text
