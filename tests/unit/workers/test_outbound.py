"""Outbound: writes sent (live) or only recorded (dry-run); reads from the API when there are credentials."""

from __future__ import annotations

import json

import pytest

from chathooks.rules import MarketingRule
from tests.conftest import make_settings
from tests.unit.workers.conftest import BOT_ID, CHAT_ID, THREAD_ID, live_outbound, live_settings, seed
from workers import outbound as outbound_module
from workers.clients.http import DEFAULT_TIMEOUT, OutboundError
from workers.outbound import Outbound, client_timeout

RULE = MarketingRule(status_if_new="pending", tags=("livechat", "vip"))


@pytest.fixture
def dry(dry_settings, fake_redis) -> Outbound:
    return Outbound.build(dry_settings, fake_redis)


@pytest.fixture
def live(livechat, mailchimp, fake_redis) -> Outbound:
    seed(livechat)
    return live_outbound(live_settings(livechat, mailchimp), fake_redis, livechat, mailchimp)


def strip(record: dict) -> dict:
    assert isinstance(record.pop("at"), float)
    return record


# --- dry-run -------------------------------------------------------------------------------


def test_dry_run_records_writes_instead_of_sending(dry):
    assert dry.dry_run
    dry.tag_thread(CHAT_ID, THREAD_ID, "refund")
    dry.send_message(CHAT_ID, "Hello", custom_id="nudge:T:1")
    assert dry.upsert_member("jane@example.org", "Jane Roe", RULE) is True
    assert [strip(r) for r in dry.records()] == [
        {"action": "tag_thread", "outcome": "dry-run", "chat_id": CHAT_ID, "thread_id": THREAD_ID, "tag": "refund"},
        {"action": "send_event", "outcome": "dry-run", "chat_id": CHAT_ID, "text": "Hello", "custom_id": "nudge:T:1"},
        {"action": "upsert_member", "outcome": "dry-run", "email": "jane@example.org", "first_name": "Jane",
         "last_name": "Roe", "status_if_new": "pending", "tags": ["livechat", "vip"]},
    ]


def test_dry_run_without_credentials_reads_nothing(dry):
    assert dry.get_chat(CHAT_ID) is None
    assert dry.routing_status(BOT_ID) is None


def test_forced_dry_run_with_credentials_still_reads_from_the_api_but_sends_nothing(livechat, fake_redis):
    seed(livechat)
    settings = live_settings(livechat, CHATHOOKS_DRY_RUN="1")
    assert settings.dry_run
    out = live_outbound(settings, fake_redis, livechat)
    assert out.get_chat(CHAT_ID)["thread"]["id"] == THREAD_ID
    assert out.routing_status(BOT_ID) == "accepting_chats"
    out.tag_thread(CHAT_ID, THREAD_ID, "refund")
    out.send_message(CHAT_ID, "Hello", custom_id="x")
    assert livechat.calls("tag_thread") == [] and livechat.calls("send_event") == []
    assert [r["outcome"] for r in out.records()] == ["dry-run", "dry-run"]


# --- live ----------------------------------------------------------------------------------


def test_live_tag_thread_tags_the_thread_and_records_it(live, livechat):
    live.tag_thread(CHAT_ID, THREAD_ID, "refund")
    assert livechat.chat(CHAT_ID)["thread"]["tags"] == ["refund"]
    assert [(r["action"], r["outcome"], r["tag"]) for r in live.records()] == [("tag_thread", "sent", "refund")]


@pytest.mark.parametrize("livechat", ["3.5", "3.6"], indirect=True)
def test_live_send_message_is_authored_by_the_bot(live, livechat):
    live.send_message(CHAT_ID, "An agent will be with you shortly.", custom_id="nudge:T:1")
    posted = livechat.chat(CHAT_ID)["thread"]["events"][-1]
    assert posted["author_id"] == BOT_ID
    assert posted["text"] == "An agent will be with you shortly."
    assert posted["custom_id"] == "nudge:T:1"
    assert posted["visibility"] == "all"
    (call,) = livechat.calls("send_event")
    if livechat.api_version == "3.5":
        assert call.headers["X-Author-Id"] == BOT_ID
    else:
        assert call.headers["Authorization"].startswith("Bearer bot.")
    assert [(r["action"], r["outcome"]) for r in live.records()] == [("send_event", "sent")]


def test_live_upsert_member_puts_the_member_then_tags_and_records_it(live, mailchimp):
    assert live.upsert_member("Jane@Example.org", "Jane Roe", RULE) is True
    (put,) = mailchimp.calls("member")
    assert put.method == "PUT"
    assert put.json == {"email_address": "Jane@Example.org", "status_if_new": "pending",
                        "merge_fields": {"FNAME": "Jane", "LNAME": "Roe"}}
    member = mailchimp.members()["jane@example.org"]
    assert member["status"] == "pending" and member["tags"] == ["livechat", "vip"]
    assert [(r["action"], r["outcome"]) for r in live.records()] == [("upsert_member", "sent")]


def test_live_upsert_member_without_a_name_sends_no_merge_fields(live, mailchimp):
    live.upsert_member("jane@example.org", None, MarketingRule())
    (put,) = mailchimp.calls("member")
    assert "merge_fields" not in put.json
    assert mailchimp.calls("tags") == []


def test_live_without_mailchimp_does_not_upsert(livechat, fake_redis):
    out = live_outbound(live_settings(livechat), fake_redis, livechat)
    assert out.upsert_member("jane@example.org", "Jane", RULE) is False
    assert out.records() == []


def test_live_reads(live, livechat):
    assert live.get_chat(CHAT_ID, THREAD_ID)["id"] == CHAT_ID
    assert live.routing_status(BOT_ID) == "accepting_chats"
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"
    assert live.routing_status(BOT_ID) == "not_accepting_chats"
    assert live.routing_status("unknown-bot") is None


def test_sent_finds_our_event_in_the_chat_by_its_custom_id(live, livechat):
    assert not live.sent(CHAT_ID, "nudge:T:1")
    live.send_message(CHAT_ID, "hi", custom_id="nudge:T:1")
    assert live.sent(CHAT_ID, "nudge:T:1")
    assert not live.sent(CHAT_ID, "nudge:T:2")


def test_tagged_reads_the_threads_tags(live, livechat):
    assert not live.tagged(CHAT_ID, THREAD_ID, "refund")
    live.tag_thread(CHAT_ID, THREAD_ID, "refund")
    assert live.tagged(CHAT_ID, THREAD_ID, "refund")
    assert not live.tagged(CHAT_ID, THREAD_ID, "order-status")


def test_without_credentials_nothing_is_known_to_be_sent_or_tagged(dry):
    assert not dry.sent(CHAT_ID, "nudge:T:1")
    assert not dry.tagged(CHAT_ID, THREAD_ID, "refund")


def test_routing_status_spelled_with_a_space_is_normalised(live, livechat):
    livechat.routing_statuses[BOT_ID] = "accepting chats"
    assert live.routing_status(BOT_ID) == "accepting_chats"


@pytest.mark.parametrize(("error_type", "transient"), [("internal", True), ("validation", False)])
def test_a_failed_write_raises_and_is_not_recorded_as_sent(live, livechat, error_type, transient):
    livechat.fail_next("tag_thread", error_type=error_type)
    with pytest.raises(OutboundError) as info:
        live.tag_thread(CHAT_ID, THREAD_ID, "refund")
    assert info.value.transient is transient
    assert live.records() == []


def test_a_failed_upsert_raises_and_is_not_recorded(live, mailchimp):
    mailchimp.fail_next("member", status=503)
    with pytest.raises(OutboundError) as info:
        live.upsert_member("jane@example.org", None, RULE)
    assert info.value.transient
    assert live.records() == []


# --- build and the record ------------------------------------------------------------------


def test_build_is_dry_run_without_credentials_and_live_with_them(livechat, fake_redis):
    assert Outbound.build(make_settings(), fake_redis).dry_run
    out = Outbound.build(live_settings(livechat), fake_redis)
    assert not out.dry_run
    seed(livechat)
    assert out.get_chat(CHAT_ID)["id"] == CHAT_ID


def test_client_timeouts_are_the_defaults_shortened_to_fit_the_task_time_limit():
    assert client_timeout(make_settings()) == DEFAULT_TIMEOUT  # 120 s: room for the defaults
    short = make_settings(CHATHOOKS_TASK_TIME_LIMIT="5", CHATHOOKS_VISIBILITY_TIMEOUT="8")
    assert client_timeout(short) == (1.25, 1.25)


def test_build_gives_both_clients_the_timeouts(livechat, mailchimp, fake_redis):
    settings = live_settings(livechat, mailchimp, CHATHOOKS_TASK_TIME_LIMIT="4", CHATHOOKS_VISIBILITY_TIMEOUT="8")
    seed(livechat)
    livechat.fail_next("get_chat", delay=1.5)
    out = Outbound.build(settings, fake_redis)
    with pytest.raises(OutboundError) as info:
        out.get_chat(CHAT_ID)
    assert (info.value.type, info.value.retry_after) == ("timeout", 1.0)
    mailchimp.fail_next("member", status=None, delay=1.5)
    with pytest.raises(OutboundError) as info:
        out.upsert_member("jane@example.org", None, RULE)
    assert info.value.type == "timeout"


def test_the_record_is_bounded_newest_kept_oldest_first(dry, fake_redis, dry_settings, monkeypatch):
    monkeypatch.setattr(outbound_module, "RECORD_LIMIT", 3)
    for n in range(5):
        dry.record("x", "recorded", n=n)
    assert [r["n"] for r in dry.records()] == [2, 3, 4]
    assert 0 < fake_redis.ttl(f"{dry_settings.key_prefix}outbound") <= outbound_module.RECORD_TTL


def test_record_never_holds_credentials(live, livechat, mailchimp):
    live.tag_thread(CHAT_ID, THREAD_ID, "refund")
    live.send_message(CHAT_ID, "hi", custom_id="c")
    live.upsert_member("jane@example.org", "Jane", RULE)
    dump = json.dumps(live.records())
    for secret in (livechat.pat, livechat.bot_secret, mailchimp.api_key):
        assert secret not in dump
