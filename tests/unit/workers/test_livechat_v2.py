"""The v2 table's automations (SPEC §5): v2 events through the dispatch table, live against the fakes."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chathooks.events import Role
from chathooks.platforms.livechat_v2.adapter import to_delivery
from tests.fakes.livechat import FakeLiveChat
from tests.helpers import fixture
from tests.unit.workers.conftest import records
from workers.dispatch import handle_delivery
from workers.runtime import Runtime

SOURCE = "livechat_v2"
CHAT = "PJ0MRSHTDG"
THREAD = "PJ0MRSHTDG_T1"


def deliver(rt: Runtime, name: str, body: dict[str, Any] | None = None) -> None:
    b = body or fixture(name, SOURCE)
    b.pop("token", None)
    delivery = to_delivery(b, rt.settings)
    assert delivery is not None
    handle_delivery(delivery.to_message(), rt)


def seed(fake: FakeLiveChat, tags: list[str] | None = None) -> None:
    """The chat as the v3 Agent API has it once the v2 chat ended: one thread, inactive."""
    fake.seed_chat({"id": CHAT, "users": [], "thread": {"id": THREAD, "active": False, "tags": tags or []}})


@pytest.fixture
def rt(make_live, livechat, mailchimp) -> Runtime:  # type: ignore[no-untyped-def]
    seed(livechat)
    return make_live(livechat, mailchimp)


def tags_sent(fake: FakeLiveChat) -> list[tuple[str, str]]:
    return sorted((r.json["thread_id"], r.json["tag"]) for r in fake.calls("tag_thread"))


def member(email: str, mailchimp) -> str:  # type: ignore[no-untyped-def]
    return f"/3.0/lists/{mailchimp.list_id}/members/{hashlib.md5(email.encode()).hexdigest()}"


@pytest.mark.parametrize("names, email, merge_fields", [
    (("chat_started", "chat_started.numeric_license"), "jane@example.org", {"FNAME": "Jane", "LNAME": "Roe"}),
    (("ticket_created", "ticket_created"), "john.doe@example.net", {"FNAME": "John", "LNAME": "Doe"}),
])
def test_a_chat_start_or_a_ticket_upserts_its_customer_once(rt, mailchimp, names, email, merge_fields):
    for name in names:
        deliver(rt, name)
    (put,) = mailchimp.calls("member")
    assert put.path == member(email, mailchimp)
    assert put.json["merge_fields"] == merge_fields


def test_chat_ended_tags_the_chats_thread_from_the_transcript_once(rt, livechat):
    deliver(rt, "chat_ended")
    deliver(rt, "chat_ended")
    # refund and order-status from the visitor, canned-apology from the agent (the supervisor's whisper is internal).
    assert tags_sent(livechat) == [(THREAD, "canned-apology"), (THREAD, "order-status"), (THREAD, "refund")]


def test_a_supervisor_whisper_is_never_matched(rt, livechat):
    body = fixture("chat_ended", SOURCE)
    body["chat"]["messages"] = [{"user_type": "supervisor", "agent_id": "s@example.com", "text": "refund it",
                                 "timestamp": 1756720830}]
    deliver(rt, "chat_ended", body)
    assert tags_sent(livechat) == []
    assert rt.author_role(rt_event(rt, body)) is Role.INTERNAL


def rt_event(rt: Runtime, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    body.pop("token", None)
    return to_delivery(body, rt.settings).events[1]  # the first message, after the end


def test_chat_ended_also_syncs_the_customer_once_with_chat_started(rt, mailchimp):
    deliver(rt, "chat_started")
    deliver(rt, "chat_ended")
    assert len(mailchimp.calls("member")) == 1


def test_tags_known_from_chat_changed_are_never_sent_again(rt, livechat):
    body = fixture("chat_changed", SOURCE)
    body["chat"]["tags"] = ["refund"]
    deliver(rt, "chat_changed", body)
    deliver(rt, "chat_ended")
    assert tags_sent(livechat) == [(THREAD, "canned-apology"), (THREAD, "order-status")]


def test_tags_already_on_the_v3_thread_are_not_sent_again(make_live, livechat, mailchimp):
    seed(livechat, tags=["order-status"])
    rt = make_live(livechat, mailchimp)
    deliver(rt, "chat_ended")
    assert tags_sent(livechat) == [(THREAD, "canned-apology"), (THREAD, "refund")]


def test_visitor_queued_is_recorded_and_acts_on_nothing(rt, livechat, mailchimp):
    deliver(rt, "visitor_queued")
    assert rt.redis.zcard(rt.keys.timeline("visitor:S1756720790.5c0e2f7a1b")) == 1
    assert mailchimp.calls() == [] and [r for r in livechat.calls() if r.route != "get_chat"] == []


def test_in_dry_run_v2_tags_are_recorded_not_sent(dry_rt):
    deliver(dry_rt, "chat_ended")
    tagged = records(dry_rt, "tag_thread")
    assert {(r["outcome"], r["chat_id"], r["thread_id"]) for r in tagged} == {("dry-run", CHAT, f"{CHAT}:1756720800")}
    assert {r["tag"] for r in tagged} == {"refund", "order-status", "canned-apology"}


def test_a_finished_chats_transcript_opens_no_silence_window(rt, livechat):
    deliver(rt, "chat_ended")
    assert [m for m, _ in rt.redis.zrange(rt.scheduler.key, 0, -1, withscores=True) if m.startswith(b"nudge|")] == []
