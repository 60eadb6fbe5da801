"""Agent-silence nudges, the first built-in trigger: the window, its deadline in the scheduler, firing it once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chathooks.events import Event, Kind, Role, epoch
from chathooks.http import OutboundError
from chathooks.rules import NudgeRule, Rules
from tests.unit.workers.conftest import (
    AGENT_ID, BOT_ID, CHAT_ID, CUSTOMER_ID, RULES, START, THREAD_ID, deliver, jobs, records, run_due, run_job, seed,
    sent_events,
)
from workers import dispatch as dispatch_module
from workers.handlers import triggers
from workers.runtime import Runtime
from workers.scheduler import LEASE_SECONDS, job

AFTER = RULES.nudge.after_seconds  # 120
FIRST_CUSTOMER = "2025-09-01T10:00:01.104937Z"  # the customer's message inside incoming_chat
LATER_CUSTOMER = "2025-09-01T10:03:12.480216Z"  # incoming_event.json


def at(seconds: float) -> str:
    return datetime.fromtimestamp(START + seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def msg(role: Role, seconds: float, n: int) -> Event:
    author = {Role.CUSTOMER: CUSTOMER_ID, Role.AGENT: AGENT_ID, Role.BOT: BOT_ID}[role]
    return Event(key=f"livechat:{CHAT_ID}:event:{THREAD_ID}_{100 + n}", source="livechat", kind=Kind.MESSAGE,
                 chat_id=CHAT_ID, thread_id=THREAD_ID, author_id=author, author_role=role, text=f"message {n}",
                 time=at(seconds))


def observe(rt: Runtime, *messages: Event) -> None:
    for m in messages:
        triggers.observe(m, rt)


def deadline_of(start: str) -> float:
    return epoch(start) + AFTER  # type: ignore[operator]


def nudge(start: str) -> str:
    """The job that evaluates the thread at the deadline of a window opened at ``start``."""
    return job("trigger", CHAT_ID, THREAD_ID, f"{deadline_of(start):.6f}")


def window(rt: Runtime) -> float | None:
    """The one open window's deadline: the moment the nudge is sent, the scheduled evaluations run in turn
    (one may come earlier: it finds nothing due and schedules the next). None: no nudge is coming."""
    sent = len(records(rt, "send_event"))
    while pending := jobs(rt, "trigger"):
        due = min(at for _, at in pending)
        run_due(rt, due)
        if len(records(rt, "send_event")) > sent:
            return due
    return None


def opened_at(seconds: float) -> float:
    return START + seconds + AFTER


def fire(rt: Runtime, at: float) -> None:
    """Evaluate the thread at ``at`` as its job would (however often it runs)."""
    rt.clock.now = max(rt.clock.now, at)  # type: ignore[attr-defined]
    triggers.due(triggers.due_event(CHAT_ID, THREAD_ID, f"{at:.6f}"), rt)


# --- the window ----------------------------------------------------------------------------


def test_a_customer_message_opens_the_window_with_the_deadline_at_its_time_plus_after(dry_rt):
    deliver(dry_rt, "incoming_chat")
    assert jobs(dry_rt, "trigger") == [(nudge(FIRST_CUSTOMER), deadline_of(FIRST_CUSTOMER))]


def test_a_second_customer_message_does_not_move_the_deadline(dry_rt):
    deliver(dry_rt, "incoming_chat", "incoming_event")
    assert jobs(dry_rt, "trigger") == [(nudge(FIRST_CUSTOMER), deadline_of(FIRST_CUSTOMER))]


def test_an_earlier_customer_message_delivered_late_moves_the_window_back(dry_rt):
    observe(dry_rt, msg(Role.CUSTOMER, 30, 2), msg(Role.CUSTOMER, 10, 1))
    assert window(dry_rt) == opened_at(10)


def test_an_agent_reply_closes_the_window(dry_rt):
    deliver(dry_rt, "incoming_chat", "user_added_to_chat", "incoming_event.agent_message")
    assert jobs(dry_rt, "trigger") == []


def test_a_customer_message_after_the_agents_reply_opens_a_new_window(dry_rt):
    observe(dry_rt, msg(Role.CUSTOMER, 10, 1), msg(Role.AGENT, 20, 2), msg(Role.CUSTOMER, 30, 3))
    assert window(dry_rt) == opened_at(30)


def test_an_older_agent_reply_delivered_late_does_not_close_a_newer_window(dry_rt):
    observe(dry_rt, msg(Role.CUSTOMER, 30, 2), msg(Role.AGENT, 20, 1))
    assert window(dry_rt) == opened_at(30)


def test_reordered_agent_reply_before_an_earlier_customer_message_leaves_no_window(dry_rt):
    observe(dry_rt, msg(Role.AGENT, 20, 2), msg(Role.CUSTOMER, 10, 1))
    assert window(dry_rt) is None


@pytest.mark.parametrize("ended", ["chat_deactivated", "chat_deactivated.router"])
def test_the_chats_end_closes_the_window_for_good(dry_rt, ended):
    deliver(dry_rt, "incoming_chat", ended)
    assert jobs(dry_rt, "trigger") == []
    deliver(dry_rt, "incoming_event")  # a customer message delivered after the end
    observe(dry_rt, msg(Role.CUSTOMER, 600, 1))
    assert jobs(dry_rt, "trigger") == []


def test_the_bots_message_changes_nothing(dry_rt):
    deliver(dry_rt, "incoming_chat")
    before = jobs(dry_rt, "trigger")
    deliver(dry_rt, "incoming_event.bot_message")  # 10:00:02, after the customer's message
    assert jobs(dry_rt, "trigger") == before


def test_the_bots_message_does_not_open_a_window(dry_rt):
    deliver(dry_rt, "incoming_event.bot_message")
    observe(dry_rt, msg(Role.BOT, 10, 1))
    assert jobs(dry_rt, "trigger") == []


def test_a_window_needs_the_authors_role(dry_rt):
    deliver(dry_rt, "incoming_event")  # dry-run, no credentials, author never introduced
    assert jobs(dry_rt, "trigger") == []


def test_no_nudge_rule_no_window(dry_settings, fake_redis, clock):
    rt = Runtime.build(dry_settings, fake_redis, rules=Rules(tagging=RULES.tagging), clock=clock)
    deliver(rt, "incoming_chat")
    assert jobs(rt, "trigger") == []


def test_after_seconds_comes_from_the_rule(dry_settings, fake_redis, clock):
    rules = Rules(nudge=NudgeRule(after_seconds=5, message="Hi"))
    rt = Runtime.build(dry_settings, fake_redis, rules=rules, clock=clock)
    observe(rt, msg(Role.CUSTOMER, 10, 1))
    assert window(rt) == START + 15


def test_reordered_customer_after_agent_reply_still_opens_a_window(dry_rt):
    observe(dry_rt, msg(Role.CUSTOMER, 10, 1), msg(Role.CUSTOMER, 30, 3), msg(Role.AGENT, 20, 2))
    assert window(dry_rt) == opened_at(30)


# --- firing --------------------------------------------------------------------------------


def test_the_nudge_is_not_sent_before_the_deadline(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    deadline = epoch(FIRST_CUSTOMER) + AFTER
    assert run_due(live_rt, deadline - 0.001) == []
    assert run_due(live_rt, deadline) == [nudge(FIRST_CUSTOMER)]
    assert len(sent_events(livechat)) == 1


@pytest.mark.parametrize("livechat", ["3.5", "3.6"], indirect=True)
def test_at_the_deadline_the_bot_sends_the_nudge_once(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    run_due(live_rt, epoch(FIRST_CUSTOMER) + AFTER)
    (call,) = sent_events(livechat)
    assert call["chat_id"] == CHAT_ID
    assert call["event"]["type"] == "message"
    assert call["event"]["text"] == RULES.nudge.message
    assert livechat.chat(CHAT_ID)["thread"]["events"][-1]["author_id"] == BOT_ID
    assert jobs(live_rt, "trigger") == []  # completed


def test_a_second_fire_or_a_duplicate_job_sends_nothing(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    member = nudge(FIRST_CUSTOMER)
    run_due(live_rt, deadline_of(FIRST_CUSTOMER))
    run_job(live_rt, member)  # the same queue message redelivered
    fire(live_rt, deadline_of(FIRST_CUSTOMER) + 1)
    live_rt.scheduler.schedule(member, 0)  # a lost tick's lease running out
    run_due(live_rt, START + 3600)
    assert len(sent_events(livechat)) == 1


def test_a_later_customer_message_does_not_bring_a_second_nudge(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    run_due(live_rt, epoch(FIRST_CUSTOMER) + AFTER)
    deliver(live_rt, "incoming_event")
    run_due(live_rt, START + 3600)
    assert len(sent_events(livechat)) == 1


def test_the_deadline_survives_a_worker_restart(live_rt, livechat, fake_redis, clock):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    restarted = Runtime.build(live_rt.settings, fake_redis, rules=RULES, outbound=live_rt.outbound, clock=clock)
    run_due(restarted, epoch(FIRST_CUSTOMER) + AFTER)
    assert len(sent_events(livechat)) == 1


@pytest.mark.parametrize("closing", ["incoming_event.agent_message", "chat_deactivated"])
def test_a_job_already_claimed_when_the_window_closes_sends_nothing(live_rt, livechat, clock, closing):
    seed(livechat)
    deliver(live_rt, "incoming_chat", "user_added_to_chat")
    clock.now = deadline_of(FIRST_CUSTOMER)
    ((member, _),) = live_rt.scheduler.claim_due(clock.now)  # queued by the tick...
    deliver(live_rt, closing)  # ...then the window closes before a worker runs it
    run_job(live_rt, member)
    assert sent_events(livechat) == []


def test_fire_for_a_closed_window_sends_nothing(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat", "user_added_to_chat", "incoming_event.agent_message")
    fire(live_rt, deadline_of(FIRST_CUSTOMER))
    triggers.due(triggers.due_event(CHAT_ID, "UNKNOWNTHREAD", "0"), live_rt)
    assert sent_events(livechat) == []


def test_the_job_of_a_window_moved_earlier_sends_nothing(dry_rt):
    observe(dry_rt, msg(Role.CUSTOMER, 30, 2))
    stale = jobs(dry_rt, "trigger")[0][0]
    observe(dry_rt, msg(Role.CUSTOMER, 10, 1))
    assert [member for member, _ in jobs(dry_rt, "trigger")] == [nudge(at(10))]  # the stale one is gone
    run_due(dry_rt, START + 10 + AFTER)
    assert len(records(dry_rt, "send_event")) == 1
    run_job(dry_rt, stale)  # a queue message of it, redelivered late
    assert len(records(dry_rt, "send_event")) == 1


def test_dry_run_records_the_nudge(dry_rt):
    deliver(dry_rt, "incoming_chat")
    run_due(dry_rt, epoch(FIRST_CUSTOMER) + AFTER)
    (record,) = records(dry_rt, "send_event")
    assert (record["outcome"], record["chat_id"], record["text"]) == ("dry-run", CHAT_ID, RULES.nudge.message)


# --- the bot's routing status --------------------------------------------------------------


def test_a_bot_not_accepting_chats_skips_the_nudge_and_records_why(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "routing_status_set.not_accepting", "incoming_chat")
    run_due(live_rt, epoch(FIRST_CUSTOMER) + AFTER)
    assert sent_events(livechat) == []
    (record,) = records(live_rt, "send_event")
    assert record["outcome"] == "skipped"
    assert "not_accepting_chats" in record["reason"]
    assert jobs(live_rt, "trigger") == []


def test_the_routing_status_is_fetched_when_no_webhook_told_us(live_rt, livechat):
    seed(livechat)
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"
    deliver(live_rt, "incoming_chat")
    run_due(live_rt, epoch(FIRST_CUSTOMER) + AFTER)
    assert sent_events(livechat) == []
    assert records(live_rt, "send_event", "skipped")
    assert len(livechat.calls("list_routing_statuses")) == 1


@pytest.mark.parametrize(("livechat", "status_fixture"), [("3.6", "routing_status_set"),
                                                          ("3.5", "routing_status_set.v3.5")], indirect=["livechat"])
def test_accepting_chats_in_either_spelling_lets_the_bot_nudge(make_live, livechat, status_fixture):
    seed(livechat)
    rt = make_live(livechat)
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"  # the webhook is newer than this
    deliver(rt, "routing_status_set.not_accepting", status_fixture, "incoming_chat")
    assert rt.state.routing_status(BOT_ID) == "accepting_chats"
    run_due(rt, epoch(FIRST_CUSTOMER) + AFTER)
    assert len(sent_events(livechat)) == 1


def test_a_nudge_refused_for_good_is_not_retried_forever(live_rt, livechat, clock):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    livechat.deactivate(CHAT_ID)  # the chat ended but its chat_deactivated was lost: send_event → chat_inactive
    clock.now = epoch(FIRST_CUSTOMER) + AFTER
    for _ in range(3):
        try:
            run_due(live_rt)
        except OutboundError:
            pass
        clock.advance(LEASE_SECONDS)
    assert len(livechat.calls("send_event")) == 1
    assert jobs(live_rt, "trigger") == []


# --- windows the previous release opened ------------------------------------------------------


def previous_window(rt: Runtime, start: float, **fields: str) -> str:
    """The previous release's silence window and its scheduled deadline; returns the job."""
    rt.redis.hset(f"{rt.settings.key_prefix}silence:{THREAD_ID}",
                  mapping={"start": f"{start:.6f}", "source": "livechat", **fields})
    member = job("nudge", CHAT_ID, THREAD_ID, f"{start:.6f}")
    rt.scheduler.schedule(member, start + AFTER)
    return member


def test_a_window_the_previous_release_opened_is_nudged_once(live_rt, livechat):
    seed(livechat)
    member = previous_window(live_rt, START)
    run_due(live_rt, START + AFTER)
    run_job(live_rt, member)  # redelivered
    (call,) = sent_events(livechat)
    assert call["event"]["text"] == RULES.nudge.message
    assert call["event"]["custom_id"] == f"nudge:{THREAD_ID}:{START:.6f}"  # the previous release's once name
    assert jobs(live_rt, "nudge") == []


@pytest.mark.parametrize("closed", [{"ended": "1"}, {"nudged": "1"}])
def test_a_previous_window_closed_or_nudged_since_sends_nothing(live_rt, livechat, closed):
    seed(livechat)
    previous_window(live_rt, START, **closed)
    run_due(live_rt, START + AFTER)
    assert sent_events(livechat) == []


def test_a_previous_releases_dead_letter_replays_as_its_nudge(live_rt, livechat):
    seed(livechat)
    previous_window(live_rt, START)
    event = triggers.previous_deadline(CHAT_ID, THREAD_ID, f"{START:.6f}")
    dispatch_module.run_handler("silence.fire", Event.from_dict(event.to_dict()), live_rt)
    assert len(sent_events(livechat)) == 1
