"""Many licenses in the workers: each organization acted for with its own credentials, its work parked while it
cannot be, provisioned and cleaned up as queued lifecycle steps (fakeredis; FakeLiveChat and FakeAccounts)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from chathooks.events import Delivery
from chathooks.http import OutboundError
from chathooks.platforms.base import ChatRef
from chathooks.platforms.livechat.adapter import load_envelope, to_delivery
from chathooks.platforms.livechat.install import PROVISION, UNINSTALL, lifecycle_delivery
from chathooks.platforms.livechat.tenants import Status
from chathooks.platforms.livechat.tokens import TenantInactive
from tests.conftest import make_settings
from tests.fakes.accounts import FakeAccounts
from tests.fakes.livechat import FakeLiveChat
from tests.helpers import fixture
from tests.unit.workers.conftest import CHAT_ID, RULES, jobs, run_due, seed
from workers.dispatch import handle_delivery
from workers.handlers.people import bot_unavailable
from workers.runtime import Runtime

ORG = fixture("incoming_event")["organization_id"]  # the fixtures' organization
KEY = Fernet.generate_key().decode()


@pytest.fixture
def accounts(livechat: FakeLiveChat) -> Iterator[FakeAccounts]:
    with FakeAccounts(livechat.client_id, "client-secret-1", livechat=livechat) as fake:
        yield fake


def market_rt(lc: FakeLiveChat, accounts: FakeAccounts, fake_redis, clock, **env: str) -> Runtime:  # type: ignore[no-untyped-def]
    settings = make_settings(
        LIVECHAT_API_URL=lc.url, LIVECHAT_API_VERSION=lc.api_version, LIVECHAT_CLIENT_ID=lc.client_id,
        LIVECHAT_CLIENT_SECRET="client-secret-1", CHATHOOKS_PUBLIC_URL="https://hooks.example.com",
        LIVECHAT_ACCOUNTS_URL=accounts.url, CHATHOOKS_SECRET_KEY=KEY, CHATHOOKS_ORG_RATE="1000", **env)
    assert not settings.dry_run
    return Runtime.build(settings, fake_redis, rules=RULES, clock=clock)


@pytest.fixture
def rt(livechat, accounts, fake_redis, clock) -> Runtime:  # type: ignore[no-untyped-def]
    return market_rt(livechat, accounts, fake_redis, clock)


def install(rt: Runtime, accounts: FakeAccounts, org: str = ORG) -> None:
    """The callback's part (tokens stored, pending) and the provisioning step a worker runs."""
    tenancy = rt.outbound.tenancy
    assert tenancy is not None
    tenancy.store.authorised(tenancy.accounts.exchange(accounts.authorize(org)))
    handle_delivery(lifecycle_delivery(org, PROVISION, f"install-{len(accounts.issued)}", 60).to_message(), rt)


def deliver(rt: Runtime, name: str, org: str = ORG) -> None:
    body = copy.deepcopy(fixture(name)) | {"organization_id": org}
    delivery = to_delivery(load_envelope(body), rt.settings)
    assert isinstance(delivery, Delivery)
    handle_delivery(delivery.to_message(), rt)


def seed_in(lc: FakeLiveChat, org: str = ORG) -> None:
    chat = seed(lc)
    lc.seed_chat(chat, organization=org)


def test_provisioning_makes_a_bot_that_accepts_chats_and_the_tenant_active(rt, livechat, accounts):
    install(rt, accounts)
    (bot,) = livechat.bots_of(ORG)
    tenant = rt.outbound.tenancy.store.get(ORG)
    assert tenant.status is Status.ACTIVE and tenant.bot_id == bot["id"] and tenant.bot_secret == bot["secret"]
    assert livechat.routing_statuses[bot["id"]] == "accepting_chats"
    install(rt, accounts)  # installed again: the same bot, no twin
    assert [b["id"] for b in livechat.bots_of(ORG)] == [bot["id"]]


def test_an_organization_not_installed_has_its_events_parked(rt, livechat):
    seed_in(livechat)
    deliver(rt, "incoming_event")
    (item,) = rt.dead_letters.list()
    assert item["handler"] == "tenants.deliver" and item["errors"][-1]["type"] == "tenant_not_installed"
    assert item["event"]["organization"] == ORG
    rt.journal.flush()
    assert rt.metrics.snapshot()["parked:not_installed"] == 1
    assert livechat.calls() == []


def test_parked_work_is_replayed_once_the_organization_is_provisioned(rt, livechat, accounts, clock):
    seed_in(livechat)
    deliver(rt, "incoming_chat")
    deliver(rt, "chat_deactivated")  # the thread ends: its matched tags are to be applied
    assert rt.dead_letters.list() and not livechat.calls("tag_thread")
    install(rt, accounts)
    assert rt.dead_letters.list() == []
    run_due(rt, time.time() + 1)  # the replays: retry jobs due now
    tagged = livechat.calls("tag_thread")
    assert tagged and {livechat.organization_of_token(r.headers["Authorization"][7:]) for r in tagged} == {ORG}


def test_events_of_the_static_organization_keep_the_environment_credentials(livechat, accounts, fake_redis, clock):
    rt = market_rt(livechat, accounts, fake_redis, clock, LIVECHAT_ACCOUNT_ID=livechat.account_id,
                   LIVECHAT_PAT=livechat.pat, LIVECHAT_ORGANIZATION_ID=livechat.organization_id,
                   LIVECHAT_BOT_ID=livechat.bot_id)
    tenancy = rt.outbound.tenancy
    assert not tenancy.serves("livechat", livechat.organization_id) and not tenancy.serves("livechat", None)
    assert tenancy.serves("livechat", ORG) and not tenancy.serves("lhc", ORG)
    assert rt.outbound.chats("livechat", livechat.organization_id).bot_id == livechat.bot_id
    with pytest.raises(TenantInactive):
        rt.outbound.chats("livechat", ORG)


def test_a_refused_refresh_marks_the_tenant_needs_reauth_and_parks_the_work(rt, livechat, accounts, clock):
    install(rt, accounts)
    seed_in(livechat)
    accounts.revoke_grant(ORG)
    deliver(rt, "incoming_chat")
    deliver(rt, "chat_deactivated")  # tagging needs get_chat: refused, refresh refused
    assert rt.outbound.tenancy.store.get(ORG).status is Status.NEEDS_REAUTH
    assert {i["errors"][-1]["type"] for i in rt.dead_letters.list()} == {"tenant_needs_reauth"}


def test_the_clean_up_revokes_the_tokens_deletes_the_bot_and_forgets_them(rt, livechat, accounts):
    install(rt, accounts)
    store = rt.outbound.tenancy.store
    store.update(ORG, status=Status.UNINSTALLED)
    handle_delivery(lifecycle_delivery(ORG, UNINSTALL, "u1", 60).to_message(), rt)
    assert accounts.live_access_tokens(ORG) == [] and livechat.bots_of(ORG) == []
    tenant = store.get(ORG)
    assert tenant.status is Status.UNINSTALLED and tenant.access_token is None and tenant.bot_id is None


def test_a_clean_up_after_a_reinstall_undoes_nothing(rt, livechat, accounts):
    install(rt, accounts)
    handle_delivery(lifecycle_delivery(ORG, UNINSTALL, "u1", 60).to_message(), rt)  # it was never uninstalled
    assert accounts.live_access_tokens(ORG) and livechat.bots_of(ORG)
    assert rt.outbound.tenancy.store.get(ORG).active


@pytest.mark.parametrize("livechat", ["3.5"], indirect=True)
def test_v35_bot_messages_go_as_the_organizations_bot_with_its_token(rt, livechat, accounts):
    install(rt, accounts)
    seed_in(livechat)
    (bot,) = livechat.bots_of(ORG)
    chats = rt.outbound.chats("livechat", ORG)
    chats.post_bot_message(ChatRef("livechat", CHAT_ID, None, ORG), "hello", custom_id="c-1")
    (sent,) = livechat.calls("send_event")
    assert sent.headers["X-Author-Id"] == bot["id"]
    assert livechat.organization_of_token(sent.headers["Authorization"][7:]) == ORG


def test_a_process_keeps_an_active_tenant_a_moment_but_never_an_inactive_one(rt, accounts, monkeypatch):
    tenancy = rt.outbound.tenancy
    assert not tenancy.active(ORG)
    install(rt, accounts)
    assert tenancy.active(ORG)  # not kept as inactive: seen active at once
    reads = []
    monkeypatch.setattr(tenancy.store, "get", lambda org, get=tenancy.store.get: reads.append(org) or get(org))
    tenancy.store.update(ORG, status=Status.NEEDS_REAUTH)
    assert tenancy.active(ORG) and reads == []  # its copy, under a second old: no read per delivery
    with pytest.raises(TenantInactive):
        tenancy.require_active(ORG)  # a parked event's replay reads the stored tenant
    tenancy._recent.clear()  # a second later
    assert not tenancy.active(ORG)


def test_work_of_an_organization_that_uninstalled_is_dropped_not_parked(rt, livechat, accounts):
    install(rt, accounts)
    seed_in(livechat)
    rt.outbound.tenancy.store.update(ORG, status=Status.UNINSTALLED)
    rt.outbound.tenancy._recent.clear()
    deliver(rt, "incoming_chat")  # queued before the uninstall reached the ingress
    deliver(rt, "chat_deactivated")
    rt.journal.flush()
    assert rt.dead_letters.list() == [] and not livechat.calls("tag_thread")
    assert rt.metrics.snapshot()["dropped:uninstalled"] >= 2


def deliver_bot_deleted(rt: Runtime, bot_id: str) -> None:
    body = copy.deepcopy(fixture("bot_deleted")) | {"organization_id": ORG}
    body["payload"]["id"] = bot_id
    handle_delivery(to_delivery(load_envelope(body), rt.settings).to_message(), rt)


def test_the_tenants_bot_deleted_by_an_admin_is_made_again(rt, livechat, accounts):
    install(rt, accounts)
    (old,) = livechat.bots_of(ORG)
    with livechat.lock:
        del livechat.bots[old["id"]]  # an admin deleted it in the LiveChat app
    deliver_bot_deleted(rt, old["id"])
    (new,) = livechat.bots_of(ORG)
    tenant = rt.outbound.tenancy.store.get(ORG)
    assert new["id"] != old["id"] and (tenant.bot_id, tenant.bot_secret) == (new["id"], new["secret"])
    assert tenant.active and livechat.routing_statuses[new["id"]] == "accepting_chats"
    assert rt.outbound.chats("livechat", ORG).bot_id == new["id"]


def test_another_bot_deleted_changes_nothing(rt, livechat, accounts):
    install(rt, accounts)
    calls = len(livechat.calls())
    deliver_bot_deleted(rt, "some-other-bot")
    assert len(livechat.calls()) == calls and rt.dead_letters.list() == []


def test_work_parked_just_as_its_tenant_turns_active_is_replayed_at_once(rt, livechat, accounts, monkeypatch):
    tenancy = rt.outbound.tenancy
    tenancy.store.authorised(tenancy.accounts.exchange(accounts.authorize(ORG)))  # pending
    add = rt.dead_letters.add

    def add_as_provisioning_ends(*args, **kwargs):  # type: ignore[no-untyped-def]
        item = add(*args, **kwargs)
        tenancy.store.update(ORG, status=Status.ACTIVE)  # its parked work was swept just before this item came
        return item

    monkeypatch.setattr(rt.dead_letters, "add", add_as_provisioning_ends)
    seed_in(livechat)
    deliver(rt, "incoming_event")
    assert rt.dead_letters.list() == []
    assert [json.loads(m.partition("|")[2])["handler"] for m, _ in
            ((m.decode(), s) for m, s in rt.redis.zrange(rt.scheduler.key, 0, -1, withscores=True))
            if m.startswith("retry|")] == ["tenants.deliver"]


def test_a_webhook_arriving_while_its_tenant_needs_reauth_is_parked_then_replayed(rt, livechat, accounts, clock):
    install(rt, accounts)
    seed_in(livechat)
    rt.outbound.tenancy.store.update(ORG, status=Status.NEEDS_REAUTH)
    rt.outbound.tenancy._recent.clear()  # a second after the refusal
    deliver(rt, "incoming_chat")
    deliver(rt, "chat_deactivated")
    parked = rt.dead_letters.list()
    assert {i["handler"] for i in parked} == {"tenants.deliver"}
    assert {i["errors"][-1]["type"] for i in parked} == {"tenant_needs_reauth"}
    rt.journal.flush()
    assert rt.metrics.snapshot()["parked:needs_reauth"] == len(parked) and not livechat.calls("tag_thread")

    install(rt, accounts)  # installed again: a new grant, provisioned
    assert rt.dead_letters.list() == []
    run_due(rt, time.time() + 1)
    tagged = livechat.calls("tag_thread")
    assert tagged and {livechat.organization_of_token(r.headers["Authorization"][7:]) for r in tagged} == {ORG}
    run_due(rt, time.time() + 1)
    assert len(livechat.calls("tag_thread")) == len(tagged)  # once


def test_routing_status_is_kept_per_organization(rt, livechat, accounts):
    other = "0b5e3c2a-7d1f-4a9e-8c6b-3e2d1f0a9b8c"
    install(rt, accounts)
    install(rt, accounts, other)
    (bot,) = livechat.bots_of(ORG)
    body = copy.deepcopy(fixture("routing_status_set.not_accepting")) | {"organization_id": ORG}
    body["payload"]["agent_id"] = bot["id"]  # ORG's bot stopped accepting chats; the other's did not
    handle_delivery(to_delivery(load_envelope(body), rt.settings).to_message(), rt)
    assert bot_unavailable(rt, rt.outbound.chats("livechat", ORG)) == "bot routing status is not_accepting_chats"
    assert bot_unavailable(rt, rt.outbound.chats("livechat", other)) is None


def test_a_failed_provisioning_is_retried_until_the_tenant_is_active(rt, livechat, accounts, clock):
    seed_in(livechat)
    deliver(rt, "incoming_event")  # parked: not installed yet
    livechat.fail_next("set_routing_status", error_type="service_unavailable")
    install(rt, accounts)
    tenancy = rt.outbound.tenancy
    assert tenancy.store.get(ORG).status is Status.PENDING and rt.dead_letters.list()
    assert [m for m, _ in jobs(rt, "retry")]  # the provisioning, again later
    run_due(rt, time.time() + 60)
    assert tenancy.store.get(ORG).status is Status.ACTIVE and len(livechat.bots_of(ORG)) == 1
    assert rt.dead_letters.list() == []  # its parked work replayed


def test_the_workers_share_each_organization_the_configured_rate(livechat, accounts, fake_redis, clock, rt):
    assert rt.outbound.tenancy.limiter.rate == 1000  # CHATHOOKS_ORG_RATE
    env = dict(LIVECHAT_API_URL=livechat.url, LIVECHAT_CLIENT_ID=livechat.client_id,
               LIVECHAT_CLIENT_SECRET="client-secret-1", CHATHOOKS_PUBLIC_URL="https://hooks.example.com",
               LIVECHAT_ACCOUNTS_URL=accounts.url, CHATHOOKS_SECRET_KEY=KEY)
    default = Runtime.build(make_settings(**env), fake_redis, rules=RULES, clock=clock)
    assert default.outbound.tenancy.limiter.rate == 5


def test_the_static_organization_has_its_own_share_of_the_rate(livechat, accounts, fake_redis, clock):
    rt = market_rt(livechat, accounts, fake_redis, clock, LIVECHAT_ACCOUNT_ID=livechat.account_id,
                   LIVECHAT_PAT=livechat.pat, LIVECHAT_ORGANIZATION_ID=livechat.organization_id,
                   LIVECHAT_BOT_ID=livechat.bot_id)
    install(rt, accounts)
    seed(livechat)
    static = rt.outbound.chats("livechat", livechat.organization_id).api.client
    livechat.fail_next("get_chat", error_type="too_many_requests", retry_after=30)
    with pytest.raises(OutboundError) as refused:
        static.get_chat(CHAT_ID)
    assert refused.value.type == "too_many_requests"
    with pytest.raises(OutboundError) as paused:
        static.get_chat(CHAT_ID)  # the environment's organization pauses ...
    assert paused.value.type == "rate_limited" and 29 < paused.value.retry_after <= 30
    limiter = rt.outbound.tenancy.limiter
    assert limiter.wait(ORG) == 0  # ... and the installed one does not
