"""Rating reactions: one reaction per rating, whichever of its signals arrive."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chathooks.rules import Rules
from tests.unit.workers.conftest import (
    BOT_ID, CHAT_ID, RULES, THREAD_ID, deliver, events, records, run_due, seed, sent_events, tag_calls,
)
from workers.handlers import rating
from workers.runtime import Runtime

BAD_PROPERTY, GOOD_PROPERTY = "thread_properties_updated", "thread_properties_updated.good"
BAD_SYSTEM = "incoming_event.rating"


def texts(livechat) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["event"]["text"] for e in sent_events(livechat)]


@pytest.mark.parametrize(("name", "score"), [(BAD_PROPERTY, 0), ("thread_properties_updated.v3.5", 0),
                                             (GOOD_PROPERTY, 1), (BAD_SYSTEM, 0)])
def test_both_signals_normalise_to_a_rating(dry_settings, name, score):
    (event,) = events(name, dry_settings)
    assert (event.chat_id, event.thread_id, event.rating) == (CHAT_ID, THREAD_ID, score)


def test_a_bad_rating_gets_the_bad_reply_and_the_bad_tag(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, BAD_PROPERTY)
    assert texts(livechat) == [RULES.rating.bad]
    assert tag_calls(livechat) == [RULES.rating.bad_tag]
    assert livechat.chat(CHAT_ID)["thread"]["events"][-1]["author_id"] == BOT_ID


@pytest.mark.parametrize("order", [[BAD_PROPERTY, BAD_SYSTEM], [BAD_SYSTEM, BAD_PROPERTY],
                                   [BAD_PROPERTY, BAD_PROPERTY, BAD_SYSTEM, BAD_SYSTEM]])
def test_both_signals_of_one_bad_rating_react_once(live_rt, livechat, order):
    seed(livechat)
    deliver(live_rt, *order)
    assert texts(livechat) == [RULES.rating.bad]
    assert tag_calls(livechat) == [RULES.rating.bad_tag]


def test_a_good_rating_gets_the_good_reply_and_no_tag(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, GOOD_PROPERTY, GOOD_PROPERTY)
    assert texts(livechat) == [RULES.rating.good]
    assert tag_calls(livechat) == []


def test_the_bad_tag_is_not_applied_again_at_the_end_of_the_thread(live_rt, livechat):
    seed(livechat, history=False)
    deliver(live_rt, BAD_PROPERTY, "chat_deactivated")
    assert tag_calls(livechat) == [RULES.rating.bad_tag]


@pytest.mark.parametrize("livechat", ["3.5"], indirect=True)
def test_v35_bad_rating_is_answered_by_the_bot_via_x_author_id(make_live, livechat):
    rt = make_live(livechat)
    seed(livechat)
    deliver(rt, "thread_properties_updated.v3.5", BAD_SYSTEM)
    (call,) = livechat.calls("send_event")
    assert call.headers["X-Author-Id"] == BOT_ID
    assert call.json["event"]["text"] == RULES.rating.bad
    assert tag_calls(livechat) == [RULES.rating.bad_tag]


def test_an_inactive_chat_gets_no_message_and_the_skip_is_recorded(live_rt, livechat):
    seed(livechat, active=False)
    deliver(live_rt, BAD_PROPERTY)
    assert livechat.calls("send_event") == []
    (record,) = records(live_rt, "send_event")
    assert (record["outcome"], record["reason"], record["text"]) == ("skipped", "chat inactive", RULES.rating.bad)


def test_a_chat_that_ends_between_the_look_and_the_message_is_skipped_not_retried(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("send_event", error_type="chat_inactive")  # it was active when asked
    deliver(live_rt, BAD_PROPERTY)  # raises nothing: no retry, no dead letter
    assert len(livechat.calls("send_event")) == 1  # the one refused
    (record,) = records(live_rt, "send_event", "skipped")
    assert (record["reason"], record["text"]) == ("chat inactive", RULES.rating.bad)


def test_a_chat_now_on_another_thread_counts_as_inactive_for_this_rating(live_rt, livechat):
    chat = seed(livechat)
    livechat.seed_chat({**chat, "thread": {**chat["thread"], "id": "NEWTHREAD01"}})
    deliver(live_rt, GOOD_PROPERTY)
    assert livechat.calls("send_event") == []
    assert records(live_rt, "send_event", "skipped")


def test_dry_run_without_credentials_answers_unless_the_thread_ended(dry_rt):
    deliver(dry_rt, GOOD_PROPERTY)
    assert [(r["outcome"], r["text"]) for r in records(dry_rt, "send_event")] == [("dry-run", RULES.rating.good)]
    deliver(dry_rt, "chat_deactivated", BAD_PROPERTY)
    assert [(r["outcome"], r["text"]) for r in records(dry_rt, "send_event")][1:] == [("skipped", RULES.rating.bad)]
    assert [r["tag"] for r in records(dry_rt, "tag_thread")] == [RULES.rating.bad_tag]


def test_a_bot_not_accepting_chats_does_not_answer(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "routing_status_set.not_accepting", GOOD_PROPERTY)
    assert livechat.calls("send_event") == []
    assert records(live_rt, "send_event", "skipped")[0]["reason"].startswith("bot routing status")


@pytest.mark.parametrize("name", ["thread_properties_deleted", "thread_properties_deleted.v3.5",
                                  "incoming_event.rating_canceled"])
def test_a_cancelled_rating_is_recorded_not_answered(live_rt, livechat, name):
    seed(livechat)
    deliver(live_rt, name)
    assert livechat.calls("send_event") == [] and livechat.calls("tag_thread") == []
    (record,) = records(live_rt, "rating_cancelled")
    assert (record["outcome"], record["chat_id"], record["thread_id"]) == ("recorded", CHAT_ID, THREAD_ID)


def test_no_rating_rule_no_reaction(dry_settings, fake_redis):
    rt = Runtime.build(dry_settings, fake_redis, rules=Rules(nudge=RULES.nudge))
    deliver(rt, BAD_PROPERTY, BAD_SYSTEM)
    assert rt.outbound.records() == []


def test_a_rating_without_a_thread_is_ignored(dry_rt):
    (event,) = events(BAD_PROPERTY, dry_rt.settings)
    rating.react(replace(event, thread_id=None), dry_rt)
    assert dry_rt.outbound.records() == []


def test_a_failed_reply_is_retried_without_tagging_twice(live_rt, livechat, clock):
    seed(livechat)
    livechat.fail_next("send_event", status=503)
    deliver(live_rt, BAD_PROPERTY)
    assert texts(livechat) == [RULES.rating.bad]  # the failed attempt
    run_due(live_rt, clock.advance(2))
    assert texts(livechat) == [RULES.rating.bad, RULES.rating.bad]
    assert len(livechat.chat(CHAT_ID)["thread"]["events"]) == 3  # two history events + one reply
    assert tag_calls(livechat) == [RULES.rating.bad_tag]


def test_a_bad_tag_refused_for_good_does_not_stop_the_reply(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("tag_thread", error_type="validation", message="tag bad-rating does not exist")
    deliver(live_rt, BAD_PROPERTY)
    assert texts(livechat) == [RULES.rating.bad]
