"""Provisioning and clean-up of an organization against FakeLiveChat and FakeAccounts; lifecycle delivery ids."""

from __future__ import annotations

import json

import pytest

from chathooks.events import Kind
from chathooks.http import OutboundError
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.client import LiveChatClient
from chathooks.platforms.livechat.install import BOT_NAME, PROVISION, UNINSTALL, clean_up, lifecycle_delivery, provision
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.settings import MarketplaceSettings
from tests.unit.chathooks.platforms.livechat.conftest import KEY, SECRET
from tests.fakes.http_server import Reply
from tests.fakes.livechat import FakeLiveChat

ORG = "7d1e0c3a-0000-4000-8000-00000000000a"


@pytest.fixture
def lc():
    with FakeLiveChat(api_version="3.6") as server:
        yield server


@pytest.fixture
def accounts_client(accounts, lc) -> AccountsClient:
    market = MarketplaceSettings(client_id=lc.client_id, client_secret=SECRET, public_url="https://hooks.example.com",
                                 secret_keys=(KEY,), accounts_url=accounts.url)
    return AccountsClient(market, timeout=5)


@pytest.fixture
def store(fake_redis, settings) -> TenantStore:
    return TenantStore(fake_redis, settings.key_prefix, [KEY])


@pytest.fixture
def tenant(store, accounts, accounts_client):
    """A tenant back from its install callback: authorised, pending."""
    return store.authorised(accounts_client.exchange(accounts.authorize(ORG)))


@pytest.fixture
def client(lc, tenant) -> LiveChatClient:
    return LiveChatClient(lc.settings(auth="token", access_token=tenant.access_token), timeout=5)


def caught(call, *args) -> OutboundError:
    with pytest.raises(OutboundError) as info:
        call(*args)
    return info.value


def names(lc: FakeLiveChat) -> list[str]:
    return [r.route for r in lc.calls()]


# provision


def test_provision_creates_the_bot_when_none(lc, store, tenant, client):
    assert lc.bots_of(ORG) == []
    active = provision(client, store, tenant)
    (bot,) = lc.bots_of(ORG)
    assert (bot["name"], bot["owner_client_id"]) == (BOT_NAME, lc.client_id)
    assert (active.bot_id, active.bot_secret) == (bot["id"], bot["secret"])
    assert store.get(ORG).bot_secret == bot["secret"]
    assert lc.routing_statuses[bot["id"]] == "accepting_chats"
    assert (active.status, active.reason) == (Status.ACTIVE, None)
    assert names(lc) == ["list_bots", "create_bot", "set_routing_status", "get_license_webhooks_state"]


def test_provision_reuses_a_stored_bot(lc, store, tenant, client):
    first = provision(client, store, tenant)
    lc.routing_statuses[first.bot_id] = "not_accepting_chats"
    before = len(lc.calls())
    again = provision(client, store, store.get(ORG))
    assert (again.bot_id, again.bot_secret) == (first.bot_id, first.bot_secret)
    assert len(lc.bots_of(ORG)) == 1
    assert names(lc)[before:] == ["list_bots", "set_routing_status", "get_license_webhooks_state"]
    assert lc.routing_statuses[first.bot_id] == "accepting_chats"


def test_provision_resets_the_secret_of_a_bot_it_made_but_did_not_store(lc, store, tenant, client):
    # An earlier attempt died between create_bot and storing the secret.
    orphan = client.create_bot(BOT_NAME)
    client.create_bot("Someone else's bot")
    active = provision(client, store, tenant)
    assert active.bot_id == orphan["id"] and len(lc.bots_of(ORG)) == 2
    assert active.bot_secret == lc.bots[orphan["id"]]["secret"] != orphan["secret"]
    assert lc.calls("reset_bot_secret")[0].json == {"id": orphan["id"]}
    assert len(lc.calls("create_bot")) == 2  # the test's two: provisioning made none
    token = client.issue_bot_token(active.bot_id, active.bot_secret, lc.client_id, ORG)
    assert lc.organization_of_token(token) == ORG


def test_provision_replaces_a_stored_bot_deleted_meanwhile(lc, store, tenant, client):
    first = provision(client, store, tenant)
    client.delete_bot(first.bot_id)
    again = provision(client, store, store.get(ORG))
    assert again.bot_id != first.bot_id and [b["id"] for b in lc.bots_of(ORG)] == [again.bot_id]
    assert lc.calls("reset_bot_secret") == []


def test_provision_resets_a_stored_bot_whose_secret_is_unknown(lc, store, tenant, client):
    first = provision(client, store, tenant)
    store.update(ORG, bot_secret=None)  # e.g. encrypted with a key no longer configured
    again = provision(client, store, store.get(ORG))
    assert again.bot_id == first.bot_id and again.bot_secret == lc.bots[first.bot_id]["secret"] != first.bot_secret
    assert len(lc.calls("create_bot")) == 1


def test_provision_enables_license_webhooks_that_are_off(lc, store, tenant, client):
    lc.set_license_webhooks(ORG, False)
    provision(client, store, tenant)
    assert len(lc.calls("enable_license_webhooks")) == 1
    assert lc.license_webhooks_of(ORG) == {lc.client_id: True}


def test_provision_leaves_license_webhooks_that_are_on(lc, store, tenant, client):
    lc.set_license_webhooks(ORG, True)
    provision(client, store, tenant)
    assert len(lc.calls("get_license_webhooks_state")) == 1
    assert lc.calls("enable_license_webhooks") == []


def test_provision_clears_a_reason(store, tenant, client):
    store.update(ORG, reason="invalid_grant")
    assert provision(client, store, store.get(ORG)).reason is None
    assert store.status(ORG) is Status.ACTIVE


def test_a_failed_provision_leaves_the_tenant_pending_and_a_retry_makes_no_second_bot(lc, store, tenant, client):
    lc.fail_next("set_routing_status", error_type="service_unavailable")
    with pytest.raises(OutboundError) as info:
        provision(client, store, tenant)
    assert info.value.transient
    pending = store.get(ORG)
    assert pending.status is Status.PENDING and pending.bot_id
    active = provision(client, store, pending)
    assert active.status is Status.ACTIVE and active.bot_id == pending.bot_id
    assert len(lc.bots_of(ORG)) == 1 and len(lc.calls("create_bot")) == 1


# clean_up


@pytest.fixture
def installed(store, tenant, client):
    return provision(client, store, tenant)


def test_clean_up_deletes_the_bot_revokes_the_tokens_and_purges(lc, accounts, accounts_client, store, installed,
                                                                client):
    store.update(ORG, status=Status.UNINSTALLED)
    gone = clean_up(client, accounts_client, store, store.get(ORG))
    assert lc.bots_of(ORG) == [] and lc.calls("delete_bot")[0].json == {"id": installed.bot_id}
    assert accounts.live_access_tokens(ORG) == []
    # The access token goes first: revoking it takes its refresh token with it.
    assert accounts.recorded("revoke")[0].headers["Authorization"] == f"Bearer {installed.access_token}"
    assert caught(accounts_client.refresh, installed.refresh_token).type == "invalid_grant"
    assert gone.status is Status.UNINSTALLED
    assert (gone.access_token, gone.refresh_token, gone.bot_id, gone.bot_secret) == (None,) * 4
    assert store.get(ORG) == gone and store.get(ORG).installed_at == installed.installed_at


def test_clean_up_revokes_the_refresh_token_when_the_access_token_fails(accounts, accounts_client, store, installed,
                                                                        client):
    accounts.fail("revoke", Reply(500, {"error": "server_error"}))
    clean_up(client, accounts_client, store, installed)
    presented = [r.headers["Authorization"] for r in accounts.recorded("revoke")]
    assert presented == [f"Bearer {installed.access_token}", f"Bearer {installed.refresh_token}"]
    assert accounts.live_access_tokens(ORG) == []
    assert caught(accounts_client.refresh, installed.refresh_token).type == "invalid_grant"


def test_clean_up_tolerates_every_failure(lc, accounts, accounts_client, store, installed, client):
    lc.fail_next("delete_bot", error_type="internal")
    accounts.fail("revoke", Reply(500, {"error": "server_error"}), times=2)
    installed = store.update(ORG, status=Status.UNINSTALLED)
    gone = clean_up(client, accounts_client, store, installed)
    assert len(lc.calls("delete_bot")) == 1 and len(accounts.recorded("revoke")) == 2
    assert gone.status is Status.UNINSTALLED and gone.access_token is None and gone.bot_id is None


def test_clean_up_with_both_services_down(lc, accounts, accounts_client, store, installed, client):
    lc.stop()
    accounts.stop()
    installed = store.update(ORG, status=Status.UNINSTALLED)
    gone = clean_up(client, accounts_client, store, installed)
    assert gone.status is Status.UNINSTALLED and gone.refresh_token is None and gone.bot_secret is None


def test_clean_up_without_a_client_only_revokes(lc, accounts, accounts_client, store, installed):
    installed = store.update(ORG, status=Status.UNINSTALLED)
    gone = clean_up(None, accounts_client, store, installed)
    assert lc.calls("delete_bot") == [] and len(lc.bots_of(ORG)) == 1
    assert accounts.live_access_tokens(ORG) == [] and gone.status is Status.UNINSTALLED


def test_clean_up_of_a_tenant_without_secrets(lc, accounts, accounts_client, store):
    store.installed(ORG, "10441")
    tenant = store.update(ORG, status=Status.UNINSTALLED)
    gone = clean_up(None, accounts_client, store, tenant)
    assert accounts.recorded("revoke") == [] and gone.status is Status.UNINSTALLED and gone.license_id == "10441"


# lifecycle_delivery


def test_provisioning_overtaken_by_an_uninstall_stores_nothing_and_deletes_its_new_bot(lc, store, tenant, client,
                                                                                       monkeypatch):
    create = client.create_bot

    def create_then_uninstalled(*args, **kwargs):  # type: ignore[no-untyped-def]
        made = create(*args, **kwargs)
        store.update(ORG, status=Status.UNINSTALLED)  # application_uninstalled landed meanwhile
        return made

    monkeypatch.setattr(client, "create_bot", create_then_uninstalled)
    assert provision(client, store, tenant) is None
    assert lc.bots_of(ORG) == [] and store.get(ORG).status is Status.UNINSTALLED and store.get(ORG).bot_id is None


def test_lifecycle_delivery_ids_are_stable_per_occurrence():
    one = lifecycle_delivery(ORG, PROVISION, "dal:code-aaaa", 3600)
    again = lifecycle_delivery(ORG, PROVISION, "dal:code-aaaa", 3600)
    assert one.id == again.id and one.events[0].key == again.events[0].key
    others = [
        lifecycle_delivery(ORG, PROVISION, "dal:code-bbbb", 3600),
        lifecycle_delivery(ORG, UNINSTALL, "dal:code-aaaa", 3600),
        lifecycle_delivery("another-org", PROVISION, "dal:code-aaaa", 3600),
    ]
    assert len({one.id, *(d.id for d in others)}) == 4
    assert len({one.events[0].key, *(d.events[0].key for d in others)}) == 4


def test_lifecycle_delivery_carries_the_step_and_not_the_occurrence():
    delivery = lifecycle_delivery(ORG, UNINSTALL, "dal:code-secret-0123456789", 600)
    (event,) = delivery.events
    assert (delivery.source, delivery.action, delivery.dedupe_ttl, delivery.organization) == (
        "livechat_app", "tenant_uninstall", 600, ORG)  # counted apart from the chat webhooks
    assert (event.source, event.kind, event.organization, event.raw) == (
        "livechat", Kind.TENANT, ORG, {"step": UNINSTALL})
    assert "code-secret-0123456789" not in json.dumps(delivery.to_message())
