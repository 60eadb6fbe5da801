"""TenantStore on fakeredis: encryption at rest, key rotation, the lifecycle writes; Tenant's refresh rule and repr."""

from __future__ import annotations

import json

import fakeredis
import pytest
from cryptography.fernet import Fernet

from chathooks.platforms.livechat.tenants import Status, Tenant, TenantStore, token_fields
from tests.helpers import Clock

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
ORG = "7d1e0c3a-0000-4000-8000-00000000000a"
OTHER_ORG = "7d1e0c3a-0000-4000-8000-00000000000b"
ACCESS = "dal:access-0f1e2d3c4b5a69788796a5b4"
REFRESH = "refresh-9a8b7c6d5e4f3a2b1c0d"
BOT_SECRET = "bot-secret-77aa88bb99cc"
GRANT = {
    "access_token": ACCESS, "refresh_token": REFRESH, "organization_id": ORG, "account_id": "acc-7f00",
    "expires_in": 28800, "scope": "chats--all:rw,agents-bot--my:rw", "token_type": "Bearer",
}



@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def prefix(settings) -> str:
    return settings.key_prefix


@pytest.fixture
def store(fake_redis, prefix, clock) -> TenantStore:
    return TenantStore(fake_redis, prefix, [KEY_A], clock)


def raw(client: fakeredis.FakeRedis, store: TenantStore, org: str = ORG) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(store.key(org)).items()}


def provisioned(store: TenantStore, org: str = ORG) -> Tenant:
    store.authorised({**GRANT, "organization_id": org})
    return store.update(org, status=Status.ACTIVE, bot_id="bot-1", bot_secret=BOT_SECRET, license_id="10441")


# Encryption at rest


def test_secrets_are_encrypted_at_rest(store, fake_redis):
    tenant = provisioned(store)
    stored = raw(fake_redis, store)
    for secret in (ACCESS, REFRESH, BOT_SECRET):
        assert not [value for value in stored.values() if secret in value]
    for name in ("access_token", "refresh_token", "bot_secret"):
        assert Fernet(KEY_A.encode()).decrypt(stored[name].encode()).decode() == getattr(tenant, name)
    # The rest is plain, for operators.
    assert (stored["status"], stored["region"], stored["license_id"], stored["bot_id"]) == (
        "active", "dal", "10441", "bot-1")


def test_secrets_read_back_decrypted(store):
    provisioned(store)
    tenant = store.get(ORG)
    assert (tenant.access_token, tenant.refresh_token, tenant.bot_secret) == (ACCESS, REFRESH, BOT_SECRET)


def test_a_store_needs_a_key(fake_redis, prefix):
    with pytest.raises(ValueError):
        TenantStore(fake_redis, prefix, [])


# Rotation


def test_rotation_old_key_still_reads_then_rotate_moves_to_the_new_key(fake_redis, prefix, clock):
    TenantStore(fake_redis, prefix, [KEY_A], clock).authorised(GRANT)
    before = raw(fake_redis, TenantStore(fake_redis, prefix, [KEY_A]))
    rotating = TenantStore(fake_redis, prefix, [KEY_B, KEY_A], clock)
    assert rotating.get(ORG).access_token == ACCESS

    assert rotating.rotate() == (1, 0)
    after = raw(fake_redis, rotating)
    assert after["access_token"] != before["access_token"]
    assert Fernet(KEY_B.encode()).decrypt(after["access_token"].encode()).decode() == ACCESS

    only_b = TenantStore(fake_redis, prefix, [KEY_B], clock).get(ORG)
    assert (only_b.access_token, only_b.refresh_token) == (ACCESS, REFRESH)
    assert TenantStore(fake_redis, prefix, [KEY_A], clock).get(ORG).access_token is None


def test_a_key_no_longer_configured_reads_as_absent(fake_redis, prefix, clock):
    provisioned(TenantStore(fake_redis, prefix, [KEY_A], clock))
    tenant = TenantStore(fake_redis, prefix, [KEY_C], clock).get(ORG)
    assert (tenant.access_token, tenant.refresh_token, tenant.bot_secret) == (None, None, None)
    assert (tenant.status, tenant.bot_id, tenant.region) == (Status.ACTIVE, "bot-1", "dal")
    assert tenant.public()["has_tokens"] is False and tenant.public()["has_bot_secret"] is False


def test_rotate_counts_every_tenant(fake_redis, prefix, clock):
    store = TenantStore(fake_redis, prefix, [KEY_A], clock)
    provisioned(store, ORG)
    store.installed(OTHER_ORG, "10442")  # no secrets at all
    rotated = TenantStore(fake_redis, prefix, [KEY_B, KEY_A], clock)
    assert rotated.rotate() == (2, 0)
    assert TenantStore(fake_redis, prefix, [KEY_B], clock).get(ORG).bot_secret == BOT_SECRET
    assert rotated.get(OTHER_ORG).access_token is None


def test_rotate_leaves_secrets_it_cannot_read_as_they_are(fake_redis, prefix, clock):
    provisioned(TenantStore(fake_redis, prefix, [KEY_A], clock))
    # The operator forgot to keep KEY_A in the list: told, and nothing destroyed.
    assert TenantStore(fake_redis, prefix, [KEY_B], clock).rotate() == (1, 1)
    assert TenantStore(fake_redis, prefix, [KEY_B, KEY_A], clock).get(ORG).access_token == ACCESS


# Lifecycle writes


def test_installed_makes_a_new_tenant_pending(store, clock):
    tenant = store.installed(ORG, "10441")
    assert (tenant.status, tenant.license_id, tenant.installed_at, tenant.updated_at) == (
        Status.PENDING, "10441", clock.now, clock.now)
    assert tenant.access_token is None
    assert store.status(ORG) is Status.PENDING


def test_installed_keeps_an_active_tenant_active(store, clock):
    first = provisioned(store)
    clock.now += 60
    tenant = store.installed(ORG, None)
    assert (tenant.status, tenant.license_id, tenant.installed_at) == (Status.ACTIVE, "10441", first.installed_at)
    assert tenant.access_token == ACCESS


def test_installed_after_uninstall_is_pending_again(store, clock):
    provisioned(store)
    store.purge_secrets(store.update(ORG, status=Status.UNINSTALLED))
    clock.now += 3600
    tenant = store.installed(ORG, "10441")
    assert (tenant.status, tenant.installed_at) == (Status.PENDING, clock.now)


def test_authorised_stores_the_grant_pending(store, clock):
    tenant = store.authorised(GRANT)
    assert tenant.status is Status.PENDING
    assert (tenant.access_token, tenant.refresh_token, tenant.account_id) == (ACCESS, REFRESH, "acc-7f00")
    assert (tenant.region, tenant.scope) == ("dal", GRANT["scope"])
    assert (tenant.expires_at, tenant.lifetime, tenant.installed_at) == (clock.now + 28800, 28800.0, clock.now)


def test_authorised_again_clears_the_reason_and_keeps_the_install_time(store, clock):
    first = store.authorised(GRANT)
    store.update(ORG, status=Status.NEEDS_REAUTH, reason="invalid_grant")
    clock.now += 600
    tenant = store.authorised({**GRANT, "access_token": "fra-a:access-new-1234", "refresh_token": None})
    assert (tenant.status, tenant.reason, tenant.installed_at) == (Status.PENDING, None, first.installed_at)
    assert (tenant.access_token, tenant.region) == ("fra-a:access-new-1234", "fra-a")
    assert tenant.refresh_token == REFRESH  # a grant without one keeps the stored one


def test_token_fields_without_region_or_lifetime():
    values = token_fields({"access_token": "plain-token-1234"}, 100.0)
    assert values == {"access_token": "plain-token-1234", "region": None, "expires_at": 28900.0,
                      "lifetime": 28800.0, "scope": None}


def test_update_sets_and_removes_fields(store, fake_redis, clock):
    store.update(ORG, license_id="10441", reason="because")
    clock.now += 5
    tenant = store.update(ORG, reason="", license_id=None, bot_id="bot-9")
    assert (tenant.reason, tenant.license_id, tenant.bot_id, tenant.updated_at) == (None, None, "bot-9", clock.now)
    assert set(raw(fake_redis, store)) == {"organization_id", "bot_id", "updated_at"}


def test_update_refuses_unknown_fields(store, fake_redis):
    with pytest.raises(ValueError, match="colour"):
        store.update(ORG, colour="blue")
    assert store.get(ORG) is None and not fake_redis.exists(store.key(ORG))


def test_purge_secrets_does_nothing_to_a_tenant_installed_again(store, clock):
    provisioned(store)
    gone = store.update(ORG, status=Status.UNINSTALLED)
    clock.now += 60
    store.installed(ORG, "10441")  # re-installed while the clean-up was revoking
    assert store.purge_secrets(gone) is None
    assert store.get(ORG).status is Status.PENDING and store.get(ORG).access_token == ACCESS


def test_a_transition_never_writes_over_an_uninstall_or_brings_a_removed_tenant_back(store):
    provisioned(store)
    store.update(ORG, status=Status.UNINSTALLED)
    assert store.transition(ORG, (Status.PENDING, Status.ACTIVE), status=Status.ACTIVE) is None
    assert store.get(ORG).status is Status.UNINSTALLED
    store.remove(ORG)
    assert store.transition(ORG, (Status.UNINSTALLED,), bot_id="b") is None and store.get(ORG) is None


def test_purge_secrets_keeps_the_record(store, fake_redis):
    provisioned(store)
    tenant = store.purge_secrets(store.update(ORG, status=Status.UNINSTALLED))
    assert tenant.status is Status.UNINSTALLED
    assert (tenant.access_token, tenant.refresh_token, tenant.bot_id, tenant.bot_secret) == (None,) * 4
    assert (tenant.expires_at, tenant.lifetime) == (None, None)
    stored = raw(fake_redis, store)
    assert not {"access_token", "refresh_token", "bot_secret", "bot_id", "expires_at"} & set(stored)
    assert (stored["license_id"], stored["status"]) == ("10441", "uninstalled")
    assert [t.organization_id for t in store.all()] == [ORG]


def test_remove_forgets_the_tenant(store, fake_redis):
    provisioned(store)
    assert store.remove(ORG) is True
    assert store.get(ORG) is None and store.status(ORG) is None and store.all() == []
    assert not fake_redis.sismember(store.index, ORG)
    assert store.remove(ORG) is False


def test_all_lists_tenants_by_organization(store):
    store.installed(OTHER_ORG, "2")
    provisioned(store, ORG)
    assert [(t.organization_id, t.status) for t in store.all()] == [(ORG, Status.ACTIVE), (OTHER_ORG, Status.PENDING)]


def test_status_of_an_unknown_tenant(store):
    assert store.status(ORG) is None and store.get(ORG) is None


def test_tenants_are_under_the_prefix(store, fake_redis, prefix):
    provisioned(store)
    assert all(key.decode().startswith(prefix) for key in fake_redis.keys("*"))


# Tenant


@pytest.mark.parametrize(("remaining", "expected"), [(7201.0, False), (7200.0, False), (7199.0, True), (-5, True)])
def test_needs_refresh_under_a_quarter_of_the_lifetime(remaining, expected):
    tenant = Tenant(ORG, expires_at=1000.0 + remaining, lifetime=28800.0)
    assert tenant.needs_refresh(1000.0) is expected


def test_needs_refresh_without_expiry():
    assert Tenant(ORG).needs_refresh(1e12) is False


def test_repr_never_shows_a_secret(store):
    tenant = provisioned(store)
    for text in (repr(tenant), str(tenant)):
        assert ORG in text and "bot-1" in text
        assert not [s for s in (ACCESS, REFRESH, BOT_SECRET) if s in text]


def test_public_has_no_secret(store):
    public = provisioned(store).public()
    assert not {"access_token", "refresh_token", "bot_secret"} & set(public)
    assert not [s for s in (ACCESS, REFRESH, BOT_SECRET) if s in json.dumps(public)]
    assert (public["status"], public["has_tokens"], public["has_bot_secret"]) == ("active", True, True)
    assert (public["organization_id"], public["region"], public["bot_id"]) == (ORG, "dal", "bot-1")
