"""A chat's story: what the workers journal per task, read back by ``chathooks chat`` (cli.chat)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
import redis

from chathooks.events import Event, Kind
from chathooks.http import OutboundError
from cli import chat
from tests.unit.workers.conftest import CHAT_ID, THREAD_ID, deliver, run_due
from workers.dispatch import REGISTRY, dispatch


def story(rt, **narrow):
    return chat.story(rt.redis, rt.keys, CHAT_ID, **narrow)


def kinds(entries):
    return [(e["type"], e["name"], e["outcome"]) for e in entries]


def test_each_delivery_is_told_with_its_handlers_and_effects(dry_rt):
    deliver(dry_rt, "incoming_chat", "incoming_event", "chat_deactivated")
    entries = story(dry_rt)
    told = kinds(entries)
    assert told[0] == ("delivery", "incoming_chat", "queued")
    assert ("handler", "timeline.record", "done") in told
    assert [e for e in told if e[0] == "delivery"] == [
        ("delivery", "incoming_chat", "queued"), ("delivery", "incoming_event", "queued"),
        ("delivery", "chat_deactivated", "queued")]
    tags = [e for e in entries if e["type"] == "effect" and e["name"] == "tag"]
    assert tags and {(e["outcome"], e["detail"]["reason"]) for e in tags} == {("skipped", "dry_run")}
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert all(e["at"].endswith("Z") and e["detail"]["source"] == "livechat" for e in entries if e["type"] != "timer")


def test_a_repeat_effect_is_skipped_as_already_done_and_counted(dry_rt):
    deliver(dry_rt, "incoming_chat", "chat_deactivated", "chat_deactivated")
    skipped = [e["detail"]["reason"] for e in story(dry_rt) if e["type"] == "effect"]
    assert "already_done" in skipped
    assert int(dry_rt.redis.hget(dry_rt.keys.metrics, "skipped:already_done")) >= 1


def test_a_failing_handler_is_told_retried_with_the_next_attempt_then_dead_lettered(dry_rt, monkeypatch, clock):
    def broken(event, rt):
        raise OutboundError("livechat", "list_tags", "connection", "the platform is away", transient=True)

    monkeypatch.setitem(REGISTRY, "tagging.match", broken)
    dry_rt.retry = replace(dry_rt.retry, max_attempts=2)
    deliver(dry_rt, "incoming_chat", "incoming_event")
    retried = [e for e in story(dry_rt) if e["outcome"] == "retried"]
    assert {(e["name"], e["detail"]["attempt"]) for e in retried} == {("tagging.match", 1)}  # its two messages
    assert retried[0]["detail"]["next_at"].endswith("Z") and "away" in retried[0]["detail"]["error"]
    assert ("timer", "retry", "pending") in kinds(story(dry_rt))
    run_due(dry_rt, clock.now + 3600)
    dead = [e for e in story(dry_rt) if e["outcome"] == "dead_lettered"]
    assert dead and dead[0]["detail"]["dead_letter"]
    assert ("timer", "retry", "pending") not in kinds(story(dry_rt))


def test_the_nudge_is_pending_then_fired(dry_rt, clock):
    deliver(dry_rt, "incoming_chat", "user_added_to_chat", "incoming_event")
    assert ("timer", "trigger", "pending") in kinds(story(dry_rt))
    run_due(dry_rt, clock.now + 3600)
    fired = [e for e in story(dry_rt) if e["type"] == "timer" and e["outcome"] == "fired"]
    assert [(e["name"], e["detail"]["trigger"]) for e in fired] == [("nudge", "nudge")]


def test_no_message_text_and_emails_masked(dry_rt):
    deliver(dry_rt, "incoming_chat", "incoming_event", "incoming_event.filled_form")
    out = io.StringIO()
    chat.render(CHAT_ID, story(dry_rt), True, out)
    printed = json.loads(out.getvalue())
    assert printed["chat_id"] == CHAT_ID and printed["entries"]
    text = out.getvalue()
    assert "@" not in text.replace("***@", "") and "Hello" not in text
    plain = io.StringIO()
    chat.render(CHAT_ID, story(dry_rt), False, plain)
    assert plain.getvalue().startswith(f"chat {CHAT_ID}: ")


def test_narrowed_by_source_and_unknown_chats(dry_rt):
    deliver(dry_rt, "incoming_chat")
    assert [e for e in story(dry_rt, source="lhc") if e["type"] != "timer"] == []  # a moment names no platform
    assert story(dry_rt, source="livechat")
    assert chat.story(dry_rt.redis, dry_rt.keys, "NOPE") is None


def test_handler_runs_outside_a_delivery_tell_nothing_unless_they_failed(dry_rt):
    ended = Event(key="k", source="livechat", kind=Kind.USER_REMOVED, chat_id=CHAT_ID, thread_id=THREAD_ID)
    dispatch([ended], dry_rt)
    dry_rt.journal.flush()
    assert [e for e in (story(dry_rt) or []) if e["type"] == "handler"] == []


def test_a_stopping_process_writes_its_last_observations(dry_rt, monkeypatch):
    from workers import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "_runtimes", {0: dry_rt})
    dry_rt.journal.observations.count("chathooks_retries", "tagging.match")
    runtime_module.flush_all()  # within the second of the last write: only a stop forces it
    assert dry_rt.redis.hget(dry_rt.keys.observed, "chathooks_retries|tagging.match") is not None


def test_no_email_is_told_where_one_was_looked_for_not_again_at_the_end(dry_rt):
    from workers.handlers import marketing

    for kind in (Kind.CHAT_STARTED, Kind.CHAT_ENDED):
        marketing.sync(Event(key=f"k:{kind}", source="livechat", kind=kind, chat_id=CHAT_ID, thread_id=THREAD_ID),
                       dry_rt)
    dry_rt.journal.flush()
    told = [e for e in story(dry_rt) if e["type"] == "effect"]
    assert [(e["name"], e["detail"]["reason"]) for e in told] == [("list_upsert", "no_email")]
    assert dry_rt.redis.hget(dry_rt.keys.metrics, "skipped:no_email") == b"1"


def test_a_lasting_write_outlives_a_discarded_run_and_a_failed_flush(dry_rt, monkeypatch):
    journal, written = dry_rt.journal, []
    journal.lasting(lambda pipe: pipe.set("lasting-test", "done"), lambda: written.append(True))
    journal.discard()  # a run Redis cut short: what it did is still to be written
    def gone(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(redis.client.Pipeline, "execute", gone)
    with pytest.raises(redis.ConnectionError):
        journal.flush()
    assert written == [] and dry_rt.redis.get("lasting-test") is None
    monkeypatch.undo()
    journal.flush()  # the next flush, whatever task it is
    assert written == [True] and dry_rt.redis.get("lasting-test") == b"done"
    journal.flush()
    assert written == [True]  # written once


def test_a_flush_on_a_server_that_lost_its_scripts_writes_the_story_and_the_processed_mark_once(dry_rt):
    deliver(dry_rt, "incoming_chat")  # scripts loaded
    dry_rt.redis.script_flush()  # a restarted Redis, or a replica just promoted
    deliver(dry_rt, "incoming_event")
    assert [e for e in kinds(story(dry_rt)) if e[0] == "delivery"] == [
        ("delivery", "incoming_chat", "queued"), ("delivery", "incoming_event", "queued")]
    assert dry_rt.metrics.snapshot()["processed:livechat"] == 2
