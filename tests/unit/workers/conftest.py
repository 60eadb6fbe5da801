"""Worker fixtures: runtimes (dry-run, or live against FakeLiveChat/FakeMailchimp), a settable clock,
and helpers that turn webhook fixtures into normalised events and run them through the dispatch table.

Events are built the realistic way: a fixture envelope through ``load_envelope`` + ``to_delivery``.
Scheduled jobs are run with the body of ``workers.tasks.run_job`` (no broker, no worker).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chathooks.events import Delivery, Event, epoch
from chathooks.mailchimp import MailchimpClient
from chathooks.platforms.lhc.api import LhcAPI
from chathooks.platforms.livechat.adapter import load_envelope, to_delivery
from chathooks.platforms.livechat.api import LiveChatAPI
from chathooks.platforms.livechat.client import LiveChatClient
from chathooks.platforms.livechat_v2.api import LiveChatV2API
from chathooks.rules import Rules, load_rules
from chathooks.settings import Settings
from tests.conftest import make_settings
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import Clock, fixture
from workers import runtime as runtime_module
from workers import tasks
from workers.dispatch import handle_delivery
from workers.outbound import Outbound
from workers.runtime import Runtime, install
from workers.scheduler import parse

# The conversation every LiveChat fixture belongs to (tests/fixtures/livechat/README.md).
CHAT_ID = "RX8QK2MZ1A"
THREAD_ID = "RX8QK2NB7C"
CUSTOMER_ID = "0e6b2f1c-9a7d-4c3e-8b5a-1f2d3c4b5a69"
AGENT_ID = "agent.smith@example.com"
BOT_ID = "9f3c1a7e0b2d4c6e8a1b3d5f7e9c0a2b"  # also FakeLiveChat's default bot

RULES: Rules = load_rules(None)  # the built-in defaults, which are SPEC §7's example
START = epoch("2025-09-01T10:00:00Z")
assert START is not None


# --- events --------------------------------------------------------------------------------


def delivery_of(name: str, settings: Settings, edit: Callable[[dict[str, Any]], None] | None = None) -> Delivery | None:
    """The delivery of webhook fixture ``name`` (``edit`` may change its payload first)."""
    body = fixture(name)
    if edit is not None:
        edit(body["payload"])
    return to_delivery(load_envelope(body), settings)


def events(name: str, settings: Settings, edit: Callable[[dict[str, Any]], None] | None = None) -> tuple[Event, ...]:
    """The normalised events of webhook fixture ``name``."""
    delivery = delivery_of(name, settings, edit)
    return delivery.events if delivery else ()


def deliver(rt: Runtime, *names: str) -> None:
    """Deliver webhook fixtures to the workers, one after another, as their tasks would."""
    for name in names:
        delivery = delivery_of(name, rt.settings)
        if delivery is not None:
            handle_delivery(delivery.to_message(), rt)


def chat_event(name: str) -> dict[str, Any]:
    """The raw chat event inside an ``incoming_event*`` fixture (to seed a fake chat's thread with)."""
    return copy.deepcopy(fixture(name)["payload"]["event"])


def seed(fake: FakeLiveChat, *extra_events: dict[str, Any], active: bool = True,
         tags: list[str] | None = None, history: bool = True) -> dict[str, Any]:
    """Seed the fake with the fixtures' chat: customer, bot and Agent Smith, the incoming_chat thread events
    (unless ``history`` is False) plus ``extra_events``."""
    chat = copy.deepcopy(fixture("incoming_chat")["payload"]["chat"])
    chat["users"].append(copy.deepcopy(fixture("user_added_to_chat")["payload"]["user"]))
    thread = chat["thread"]
    thread["active"] = active
    thread["events"] = (thread["events"] if history else []) + list(extra_events)
    if tags is not None:
        thread["tags"] = tags
    return fake.seed_chat(chat)


# --- what happened -------------------------------------------------------------------------


def records(rt: Runtime, action: str | None = None, outcome: str | None = None) -> list[dict[str, Any]]:
    """The outbound record as the task in progress will have left it (written when the task ends)."""
    rt.journal.flush()
    return [r for r in rt.outbound.records()
            if (action is None or r["action"] == action) and (outcome is None or r["outcome"] == outcome)]


def jobs(rt: Runtime, kind: str) -> list[tuple[str, float]]:
    """Scheduled (member, due) pairs of one kind ("trigger" or "retry"), as the task in progress will have left
    them (a moved evaluation is written when the task ends)."""
    rt.journal.flush()
    return [(m.decode(), score) for m, score in rt.redis.zrange(rt.scheduler.key, 0, -1, withscores=True)
            if parse(m.decode())[0] == kind]


def retry_payloads(rt: Runtime) -> list[tuple[dict[str, Any], float]]:
    return [(json.loads(parse(member)[1][0]), due) for member, due in jobs(rt, "retry")]


def sent_events(fake: FakeLiveChat) -> list[dict[str, Any]]:
    """Bodies of the send_event calls the fake received (failed ones included)."""
    return [r.json for r in fake.calls("send_event")]


def tag_calls(fake: FakeLiveChat) -> list[str]:
    return [r.json["tag"] for r in fake.calls("tag_thread")]


# --- running scheduled jobs ----------------------------------------------------------------


def run_job(rt: Runtime, member: str, due_at: float | None = None) -> None:
    """Run one scheduled job with the body of ``workers.tasks.run_job`` (called directly: no broker)."""
    app = tasks.run_job.app
    previous = runtime_module._runtimes.get(id(app))
    install(app, rt)
    try:
        tasks.run_job.run(member, due_at)
    finally:
        if previous is None:
            runtime_module._runtimes.pop(id(app), None)
        else:
            install(app, previous)


def run_due(rt: Runtime, now: float | None = None) -> list[str]:
    """What a tick and the workers do: claim the jobs due at ``now`` (default: the runtime's clock) and run them.

    A settable clock is moved on to ``now`` first: the jobs run at that moment.
    """
    if now is not None and isinstance(rt.clock, Clock):
        rt.clock.now = max(rt.clock.now, now)
    due = rt.scheduler.claim_due(rt.clock() if now is None else now)
    for member, due_at in due:
        run_job(rt, member, due_at)
    return [member for member, _ in due]


# --- runtimes ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def dry_settings() -> Settings:
    """Dry-run settings (no LiveChat credentials) that still know the bot's id."""
    return make_settings(LIVECHAT_BOT_ID=BOT_ID)


@pytest.fixture
def dry_rt(dry_settings: Settings, fake_redis, clock: Clock) -> Runtime:  # type: ignore[no-untyped-def]
    return Runtime.build(dry_settings, fake_redis, rules=RULES, clock=clock)


@pytest.fixture
def livechat(request: pytest.FixtureRequest) -> Iterator[FakeLiveChat]:
    """FakeLiveChat; parametrize indirectly with "3.5" or "3.6" (default)."""
    with FakeLiveChat(api_version=getattr(request, "param", "3.6")) as fake:
        yield fake


@pytest.fixture
def mailchimp() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as fake:
        yield fake


def live_settings(lc: FakeLiveChat, mc: FakeMailchimp | None = None, **env: str) -> Settings:
    values = dict(
        LIVECHAT_ACCOUNT_ID=lc.account_id, LIVECHAT_PAT=lc.pat, LIVECHAT_API_URL=lc.url,
        LIVECHAT_API_VERSION=lc.api_version, LIVECHAT_BOT_ID=lc.bot_id, LIVECHAT_BOT_SECRET=lc.bot_secret,
        LIVECHAT_CLIENT_ID=lc.client_id, LIVECHAT_ORGANIZATION_ID=lc.organization_id,
    )
    if mc is not None:
        values.update(MAILCHIMP_API_KEY=mc.api_key, MAILCHIMP_LIST_ID=mc.list_id, MAILCHIMP_API_URL=mc.api_url)
    settings = make_settings(**(values | env))
    assert "CHATHOOKS_DRY_RUN" in env or not settings.dry_run
    return settings


def live_outbound(settings: Settings, client, lc: FakeLiveChat,  # type: ignore[no-untyped-def]
                  mc: FakeMailchimp | None = None) -> Outbound:
    v3 = LiveChatAPI(LiveChatClient(lc.settings(), timeout=(2.0, 5.0)), settings.livechat.bot_id)
    apis = {"livechat": v3, "livechat_v2": LiveChatV2API(v3), "lhc": LhcAPI(None, RULES.lhc)}
    return Outbound(settings, client, f"{settings.key_prefix}outbound", apis,
                    mailchimp=MailchimpClient(mc.settings(), timeout=(2.0, 5.0)) if mc else None)


@pytest.fixture
def make_live(fake_redis, clock: Clock):  # type: ignore[no-untyped-def]
    """``make_live(livechat, mailchimp=None, rules=RULES, **env)``: a live Runtime against the fakes."""

    def build(lc: FakeLiveChat, mc: FakeMailchimp | None = None, rules: Rules = RULES, **env: str) -> Runtime:
        settings = live_settings(lc, mc, **env)
        return Runtime.build(settings, fake_redis, rules=rules, clock=clock,
                             outbound=live_outbound(settings, fake_redis, lc, mc))

    return build


@pytest.fixture
def live_rt(make_live, livechat: FakeLiveChat, mailchimp: FakeMailchimp) -> Runtime:  # type: ignore[no-untyped-def]
    return make_live(livechat, mailchimp)
