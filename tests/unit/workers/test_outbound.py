"""Outbound: writes through each chat's platform sent (live) or only recorded (dry-run); list upserts; the record."""

from __future__ import annotations

import json

import pytest

from chathooks.http import DEFAULT_TIMEOUT, OutboundError
from chathooks.platforms.base import ChatRef
from chathooks.rules import MarketingRule
from tests.conftest import make_settings
from tests.unit.workers.conftest import BOT_ID, CHAT_ID, THREAD_ID, live_outbound, live_settings, seed
from workers import outbound as outbound_module
from workers.outbound import Outbound, client_timeout

RULE = MarketingRule(status_if_new="pending", tags=("livechat", "vip"))
REF = ChatRef("livechat", CHAT_ID, THREAD_ID)


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
    assert dry.dry_run and dry.chats("livechat").dry_run
    dry.chats("livechat").tag(REF, "refund")
    dry.chats("livechat").post_bot_message(REF, "Hello", custom_id="nudge:T:1")
    assert dry.upsert_member("jane@example.org", "Jane Roe", RULE) is True
    assert [strip(r) for r in dry.records()] == [
        {"action": "tag_thread", "outcome": "dry-run", "chat_id": CHAT_ID, "thread_id": THREAD_ID, "tag": "refund"},
        {"action": "send_event", "outcome": "dry-run", "chat_id": CHAT_ID, "text": "Hello", "custom_id": "nudge:T:1"},
        {"action": "upsert_member", "outcome": "dry-run", "email": "jane@example.org", "first_name": "Jane",
         "last_name": "Roe", "status_if_new": "pending", "tags": ["livechat", "vip"]},
    ]


def test_dry_run_without_credentials_reads_nothing(dry):
    chats = dry.chats("livechat")
    assert chats.fetch_thread(REF) is None
    assert chats.thread_active(REF) is None
    assert chats.bot_status() is None


def test_forced_dry_run_with_credentials_still_reads_from_the_api_but_sends_nothing(livechat, fake_redis):
    seed(livechat)
    settings = live_settings(livechat, CHATHOOKS_DRY_RUN="1")
    assert settings.dry_run
    out = live_outbound(settings, fake_redis, livechat)
    chats = out.chats("livechat")
    assert chats.dry_run
    assert chats.fetch_thread(REF).history
    assert chats.bot_status() == "accepting_chats"
    chats.tag(REF, "refund")
    chats.post_bot_message(REF, "Hello", custom_id="x")
    assert livechat.calls("tag_thread") == [] and livechat.calls("send_event") == []
    assert [r["outcome"] for r in out.records()] == ["dry-run", "dry-run"]


def test_skipped_effects_are_recorded_under_the_platforms_method_with_the_reason(dry):
    dry.chats("livechat").skipped("message", REF, "chat inactive", code="chat_inactive", text="Hello")
    dry.chats("livechat").skipped("tag", REF, "no subject", code="no_subject", tag="refund")
    assert [strip(r) for r in dry.records()] == [
        {"action": "send_event", "outcome": "skipped", "chat_id": CHAT_ID, "text": "Hello", "reason": "chat inactive"},
        {"action": "tag_thread", "outcome": "skipped", "chat_id": CHAT_ID, "tag": "refund", "reason": "no subject"},
    ]


# --- live ----------------------------------------------------------------------------------


def test_live_tag_tags_the_thread_and_records_it(live, livechat):
    live.chats("livechat").tag(REF, "refund")
    assert livechat.chat(CHAT_ID)["thread"]["tags"] == ["refund"]
    assert [(r["action"], r["outcome"], r["tag"]) for r in live.records()] == [("tag_thread", "sent", "refund")]


def test_live_bot_message_is_sent_and_recorded(live, livechat):
    live.chats("livechat").post_bot_message(REF, "An agent will be with you shortly.", custom_id="nudge:T:1")
    assert livechat.chat(CHAT_ID)["thread"]["events"][-1]["text"] == "An agent will be with you shortly."
    assert [(r["action"], r["outcome"]) for r in live.records()] == [("send_event", "sent")]


def test_v2_chats_are_live_with_the_livechat_credentials_and_tag_the_chats_latest_thread(live, livechat):
    chats = live.chats("livechat_v2")
    assert not chats.dry_run
    chats.tag(ChatRef("livechat_v2", CHAT_ID, CHAT_ID), "refund")
    assert livechat.chat(CHAT_ID)["thread"]["tags"] == ["refund"]
    assert [(r["action"], r["outcome"], r["thread_id"]) for r in live.records()] == [("tag_thread", "sent", CHAT_ID)]


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


@pytest.mark.parametrize(("error_type", "transient"), [("internal", True), ("validation", False)])
def test_a_failed_write_raises_and_is_not_recorded_as_sent(live, livechat, error_type, transient):
    livechat.fail_next("tag_thread", error_type=error_type)
    with pytest.raises(OutboundError) as info:
        live.chats("livechat").tag(REF, "refund")
    assert info.value.transient is transient
    assert live.records() == []


def test_a_failed_upsert_raises_and_is_not_recorded(live, mailchimp):
    mailchimp.fail_next("member", status=503)
    with pytest.raises(OutboundError) as info:
        live.upsert_member("jane@example.org", None, RULE)
    assert info.value.transient
    assert live.records() == []


def test_a_source_no_platform_serves_is_a_lookup_error(dry):
    with pytest.raises(LookupError, match="'nowhere'"):
        dry.chats("nowhere")


# --- build and the record ------------------------------------------------------------------


def test_build_is_dry_run_without_credentials_and_live_with_them(livechat, fake_redis):
    dry = Outbound.build(make_settings(), fake_redis)
    assert dry.dry_run and all(dry.chats(s).dry_run for s in ("livechat", "livechat_v2"))
    out = Outbound.build(live_settings(livechat), fake_redis)
    assert not out.dry_run and not out.chats("livechat").dry_run and not out.chats("livechat_v2").dry_run
    seed(livechat)
    assert out.chats("livechat").fetch_thread(REF).history


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
        out.chats("livechat").fetch_thread(REF)
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
    live.chats("livechat").tag(REF, "refund")
    live.chats("livechat").post_bot_message(REF, "hi", custom_id="c")
    live.upsert_member("jane@example.org", "Jane", RULE)
    dump = json.dumps(live.records())
    for secret in (livechat.pat, livechat.bot_secret, mailchimp.api_key):
        assert secret not in dump


def test_without_credentials_nothing_is_known_to_be_sent_or_tagged(dry):
    assert not dry.chats("livechat").bot_message_landed(REF, "nudge:T:1", "hi", 0.0)
    assert not dry.chats("livechat").tag_landed(REF, "refund")
    assert BOT_ID == dry.chats("livechat").bot_id  # known from the settings even without credentials


def test_skipped_and_dry_run_effects_are_counted_by_reason(dry, fake_redis, dry_settings):
    dry.chats("livechat").skipped("tag", REF, "no subject id", code="no_subject", tag="refund")
    dry.chats("livechat").tag(REF, "refund")
    dry.upsert_member("jane@example.org", None, RULE)
    counters = {k.decode(): int(v) for k, v in fake_redis.hgetall(f"{dry_settings.key_prefix}metrics").items()}
    assert (counters["skipped:no_subject"], counters["skipped:dry_run"]) == (1, 2)
