"""TenantTokens against FakeAccounts: refresh before expiry, once at a time per organization; why a tenant is
inactive; refused grants and transient failures."""

from __future__ import annotations

import pickle
import threading
import time

import fakeredis
import pytest
import redis
from cryptography.fernet import Fernet

from chathooks.http import OutboundError
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.platforms.livechat.tokens import TenantInactive, TenantTokens
from chathooks.settings import MarketplaceSettings
from tests.fakes.accounts import FakeAccounts
from tests.fakes.http_server import Fault, Reply
from tests.helpers import Clock

CLIENT_ID = "4f0c2b9e8d7a6c5b4a3f2e1d0c9b8a7f"
SECRET = "client-secret-3e4f5a6b"
KEY = Fernet.generate_key().decode()
ORG = "7d1e0c3a-0000-4000-8000-00000000000a"
LIFETIME = 28800
REAL_REDIS = "redis://127.0.0.1:6379/15"



@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def accounts():
    with FakeAccounts(CLIENT_ID, SECRET) as server:
        yield server


@pytest.fixture
def redis_client(fake_redis):
    return fake_redis


@pytest.fixture
def shared_redis(settings):
    """The real Redis (db 15) for threads, only this test's keys cleaned up; fakeredis when none runs."""
    client = redis.Redis.from_url(REAL_REDIS, socket_timeout=2, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        yield fakeredis.FakeRedis()
        return
    yield client
    keys = list(client.scan_iter(match=f"{settings.key_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def make_tokens(accounts: FakeAccounts, client: redis.Redis, prefix: str, clock, **opts) -> TenantTokens:
    market = MarketplaceSettings(client_id=CLIENT_ID, client_secret=SECRET, public_url="https://hooks.example.com",
                                 secret_keys=(KEY,), accounts_url=accounts.url)
    store = TenantStore(client, prefix, [KEY], clock)
    return TenantTokens(store, AccountsClient(market, timeout=5), client, prefix, clock=clock,
                        **({"poll_seconds": 0.01} | opts))


@pytest.fixture
def tokens(accounts, redis_client, settings, clock) -> TenantTokens:
    return make_tokens(accounts, redis_client, settings.key_prefix, clock)


def install(tokens: TenantTokens, accounts: FakeAccounts, org: str = ORG, status: Status = Status.ACTIVE):
    """A tenant authorised through the fake's code grant, then given ``status``."""
    grant = tokens._accounts.exchange(accounts.authorize(org))
    tokens.store.authorised(grant)
    return tokens.store.update(org, status=status)


def inactive(call, *args) -> TenantInactive:
    with pytest.raises(TenantInactive) as info:
        call(*args)
    return info.value


def lock_key(settings, org: str = ORG) -> str:
    return f"{settings.key_prefix}tenant:{org}:refreshing"


# current


def test_current_keeps_a_fresh_token(tokens, accounts, clock):
    tenant = install(tokens, accounts)
    clock.now += LIFETIME * 0.75 - 1
    assert tokens.current(ORG).access_token == tenant.access_token
    assert accounts.refreshes == 0


def test_current_refreshes_under_a_quarter_of_the_lifetime(tokens, accounts, clock):
    tenant = install(tokens, accounts)
    clock.now += LIFETIME * 0.75 + 1
    fresh = tokens.current(ORG)
    assert fresh.access_token != tenant.access_token and accounts.refreshes == 1
    assert (fresh.expires_at, fresh.status) == (clock.now + LIFETIME, Status.ACTIVE)
    assert tokens.store.get(ORG).access_token == fresh.access_token
    assert tokens.current(ORG).access_token == fresh.access_token and accounts.refreshes == 1


def test_current_serves_a_pending_tenant_for_its_provisioning(tokens, accounts):
    tenant = install(tokens, accounts, status=Status.PENDING)
    assert tokens.current(ORG).access_token == tenant.access_token


@pytest.mark.parametrize("status", [Status.NEEDS_REAUTH, Status.UNINSTALLED])
def test_current_refuses_a_tenant_that_cannot_act(tokens, accounts, status, clock):
    install(tokens, accounts, status=status)
    clock.now += LIFETIME  # even one needing a refresh: the accounts server is not asked
    error = inactive(tokens.current, ORG)
    assert (error.reason, error.organization) == (str(status), ORG)
    assert accounts.refreshes == 0


def test_current_without_tokens(tokens):
    assert inactive(tokens.current, ORG).reason == "not_installed"
    tokens.store.installed(ORG, "10441")
    assert inactive(tokens.current, ORG).reason == "pending"


# active


@pytest.mark.parametrize("status", [Status.PENDING, Status.NEEDS_REAUTH, Status.UNINSTALLED])
def test_active_says_why_a_tenant_is_inactive(tokens, accounts, status):
    install(tokens, accounts, status=status)
    error = inactive(tokens.active, ORG)
    assert (error.organization, error.reason, error.type) == (ORG, str(status), f"tenant_{status}")
    assert (error.service, error.transient) == ("livechat", False)
    assert ORG in error.message and str(status).replace("_", " ") in error.message


@pytest.mark.parametrize("org", [ORG, None])
def test_active_for_an_unknown_organization(tokens, org):
    error = inactive(tokens.active, org)
    assert (error.organization, error.reason, error.type) == (org, "not_installed", "tenant_not_installed")


def test_active_returns_an_active_tenant(tokens, accounts):
    tenant = install(tokens, accounts)
    assert tokens.active(ORG) == tenant


def test_tenant_inactive_pickles():
    error = pickle.loads(pickle.dumps(TenantInactive(ORG, "needs_reauth")))
    assert isinstance(error, TenantInactive) and isinstance(error, OutboundError)
    assert (error.organization, error.reason, error.type, error.transient) == (
        ORG, "needs_reauth", "tenant_needs_reauth", False)
    assert error.message == f"organization {ORG} is needs reauth"
    assert str(pickle.loads(pickle.dumps(TenantInactive(None, "not_installed")))).endswith(
        "organization (none) is not installed")


# refresh


def test_two_workers_racing_refresh_once_and_share_the_token(accounts, shared_redis, settings, clock):
    installer = make_tokens(accounts, shared_redis, settings.key_prefix, clock)
    stale = install(installer, accounts).access_token
    clock.now += LIFETIME * 0.9
    accounts.inject("token", Fault(delay=0.2))  # the refresh answers late: the other worker meets the lock
    workers = [make_tokens(accounts, shared_redis, settings.key_prefix, clock) for _ in range(2)]
    start, results, errors = threading.Barrier(2), {}, []

    def work(n: int) -> None:
        try:
            start.wait(timeout=5)
            results[n] = workers[n].current(ORG).access_token
        except (OutboundError, redis.RedisError, threading.BrokenBarrierError) as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors and len(results) == 2
    assert accounts.refreshes == 1 and len(accounts.recorded("token")) == 2  # the exchange, one refresh
    assert results[0] == results[1] != stale
    assert installer.store.get(ORG).access_token == results[0]
    assert not shared_redis.exists(lock_key(settings))


def test_refresh_takes_a_token_stored_meanwhile(tokens, accounts, redis_client, settings):
    tenant = install(tokens, accounts)
    redis_client.set(lock_key(settings), "another-worker", px=10_000)
    assert tokens.refresh(ORG, "dal:the-stale-token").access_token == tenant.access_token
    assert accounts.refreshes == 0


def test_a_lock_held_too_long_is_a_transient_busy(accounts, redis_client, settings):
    tokens = make_tokens(accounts, redis_client, settings.key_prefix, time.time, lock_seconds=0.1)
    tenant = install(tokens, accounts)
    redis_client.set(lock_key(settings), "another-worker", px=10_000)
    with pytest.raises(OutboundError) as info:
        tokens.refresh(ORG, tenant.access_token)
    assert (info.value.type, info.value.transient) == ("busy", True)
    assert redis_client.get(lock_key(settings)) == b"another-worker"  # not ours to release
    assert accounts.refreshes == 0


def test_invalid_grant_makes_the_tenant_need_reauth(tokens, accounts, clock):
    install(tokens, accounts)
    accounts.revoke_grant(ORG)
    clock.now += LIFETIME
    error = inactive(tokens.current, ORG)
    assert (error.reason, error.type, error.transient) == ("needs_reauth", "tenant_needs_reauth", False)
    tenant = tokens.store.get(ORG)
    assert (tenant.status, tenant.reason) == (Status.NEEDS_REAUTH, "invalid_grant")
    asked = len(accounts.recorded("token"))
    assert inactive(tokens.current, ORG).reason == "needs_reauth"
    assert len(accounts.recorded("token")) == asked


def test_no_refresh_token_makes_the_tenant_need_reauth(tokens, accounts):
    tenant = install(tokens, accounts)
    tokens.store.update(ORG, refresh_token=None)
    assert inactive(tokens.refresh, ORG, tenant.access_token).reason == "needs_reauth"
    assert (tokens.store.status(ORG), tokens.store.get(ORG).reason) == (Status.NEEDS_REAUTH, "no refresh token")


@pytest.mark.parametrize(("status", "body"), [(503, {"error": "temporarily_unavailable"}),
                                              (500, {"error": "server_error"}), (429, None)])
def test_a_transient_accounts_failure_leaves_the_tenant_active(tokens, accounts, redis_client, settings, clock,
                                                               status, body):
    tenant = install(tokens, accounts)
    clock.now += LIFETIME
    accounts.fail("token", Reply(status, body))
    with pytest.raises(OutboundError) as info:
        tokens.current(ORG)
    assert not isinstance(info.value, TenantInactive)
    assert (info.value.service, info.value.transient) == ("livechat_accounts", True)
    stored = tokens.store.get(ORG)
    assert (stored.status, stored.access_token) == (Status.ACTIVE, tenant.access_token)
    assert not redis_client.exists(lock_key(settings))
    assert tokens.current(ORG).access_token != tenant.access_token  # the next try refreshes


def test_an_unreachable_accounts_server_leaves_the_tenant_active(tokens, accounts, clock):
    install(tokens, accounts)
    accounts.stop()
    clock.now += LIFETIME
    with pytest.raises(OutboundError) as info:
        tokens.current(ORG)
    assert (info.value.type, info.value.transient) == ("connection", True)
    assert tokens.store.status(ORG) is Status.ACTIVE


def test_a_refused_refresh_leaves_an_uninstalled_tenant_uninstalled(tokens, accounts):
    tenant = install(tokens, accounts)
    tokens.store.update(ORG, status=Status.UNINSTALLED)  # application_uninstalled; clean-up queued
    accounts.revoke_grant(ORG)  # LiveChat withdrew the grant
    # A call already under way with the old token failed at authentication: TenantClient refreshes.
    with pytest.raises(TenantInactive):
        tokens.refresh(ORG, tenant.access_token)
    assert tokens.store.status(ORG) is Status.UNINSTALLED
