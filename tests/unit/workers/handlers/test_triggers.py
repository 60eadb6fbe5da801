"""Triggers on the workers: state from events, evaluation on events and at scheduled moments, once per window."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime

import pytest

from chathooks.events import Event, Kind, Role, User
from chathooks.rules import NudgeRule, Rules, load_rules
from tests.helpers import FIXTURES
from tests.unit.workers.conftest import (
    AGENT_ID, BOT_ID, CHAT_ID, CUSTOMER_ID, START, THREAD_ID, Clock, jobs, records, run_due, seed,
)
from workers.dispatch import dispatch
from workers.handlers import triggers
from workers.runtime import Runtime
from workers.scheduler import LEASE_SECONDS

RULES = load_rules(str(FIXTURES / "rules" / "triggers.yaml"))
HELLO = "Hi! An agent will be right with you."
TWICE = "We have your messages: someone is on the way."
BOT_NO_REPLY = "Still there? Let me find a human for you."


def at(seconds: float) -> str:
    return datetime.fromtimestamp(START + seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Chat:
    """Events of one LiveChat thread, numbered so each has its own key (a redelivery reuses it)."""

    def __init__(self, source: str = "livechat", thread: str = THREAD_ID) -> None:
        self.source, self.thread, self.n = source, thread, 0

    def _event(self, kind: Kind, seconds: float, **fields) -> Event:  # type: ignore[no-untyped-def]
        self.n += 1
        return Event(key=f"{self.source}:{CHAT_ID}:{self.thread}:{self.n}", source=self.source, kind=kind,
                     chat_id=CHAT_ID, thread_id=self.thread, time=at(seconds), **fields)

    def says(self, role: Role, seconds: float, text: str = "a message", **fields) -> Event:  # type: ignore[no-untyped-def]
        author = {Role.CUSTOMER: CUSTOMER_ID, Role.AGENT: AGENT_ID, Role.BOT: BOT_ID}[role]
        return self._event(Kind.MESSAGE, seconds, author_id=author, author_role=role, text=text, **fields)

    def customer(self, seconds: float, text: str = "a message", **fields) -> Event:  # type: ignore[no-untyped-def]
        return self.says(Role.CUSTOMER, seconds, text, **fields)

    def agent(self, seconds: float, text: str = "Hello, how can I help?") -> Event:
        return self.says(Role.AGENT, seconds, text)

    def bot(self, seconds: float, text: str = "I'm the bot") -> Event:
        return self.says(Role.BOT, seconds, text)

    def started(self, seconds: float, **fields) -> Event:  # type: ignore[no-untyped-def]
        return self._event(Kind.CHAT_STARTED, seconds, **fields)

    def ended(self, seconds: float) -> Event:
        return self._event(Kind.CHAT_ENDED, seconds)


@pytest.fixture
def rt(dry_settings, fake_redis, clock) -> Runtime:  # type: ignore[no-untyped-def]
    return Runtime.build(dry_settings, fake_redis, rules=RULES, clock=clock)


def happen(rt: Runtime, *events: Event) -> None:
    """The events' task: its handlers, then what it writes when it ends."""
    dispatch(events, rt)
    rt.journal.flush()


def until(rt: Runtime, seconds: float) -> None:
    """Time passes to START + ``seconds``, a tick on each whole second claiming what is due."""
    clock: Clock = rt.clock  # type: ignore[assignment]
    while clock.now < START + seconds:
        run_due(rt, min(math.floor(clock.now) + 1, START + seconds))


def said(rt: Runtime, text: str | None = None) -> list[float]:
    """When the bot's messages were sent (dry-run records), by text."""
    return [r["at"] for r in records(rt) if r["action"] in ("send_event", "addmsgadmin") and "text" in r
            and r["outcome"] != "skipped" and (text is None or r["text"] == text)]


def tagged(rt: Runtime) -> list[str]:
    return [r["tag"] for r in records(rt, "tag_thread")]


@pytest.fixture(autouse=True)
def record_times(monkeypatch, clock):  # type: ignore[no-untyped-def]
    """Records carry the runtime clock's time, so tests can say when the bot spoke."""
    monkeypatch.setattr("workers.outbound.time.time", clock)


# --- LHC's examples ----------------------------------------------------------------------------


def test_hello_without_a_reply_for_25_seconds_is_answered_once_at_25_seconds(rt):
    chat = Chat()
    happen(rt, chat.started(0), chat.customer(0, "Hello?"))
    until(rt, 24.9)
    assert said(rt, HELLO) == []
    until(rt, 26)
    assert said(rt, HELLO) == [START + 25]


def test_an_agent_reply_reopens_the_window(rt):
    chat = Chat()
    happen(rt, chat.customer(0, "hello"))
    until(rt, 30)
    happen(rt, chat.agent(31), chat.customer(40, "hello again"))
    until(rt, 70)
    assert said(rt, HELLO) == [START + 25, START + 65]


def test_a_new_customer_message_restarts_its_clock_so_the_condition_is_false_in_between(rt):
    chat = Chat()
    happen(rt, chat.customer(0, "hello"))
    until(rt, 30)
    happen(rt, chat.customer(31, "thanks"))  # the last message has none of the words: false, the window reopens
    until(rt, 90)
    assert said(rt, HELLO) == [START + 25]
    happen(rt, chat.customer(91, "are you there?"))  # true again 25 s later
    until(rt, 120)
    assert said(rt, HELLO) == [START + 25, START + 116]


def test_a_message_without_the_words_does_not_start_the_clock(rt):
    chat = Chat()
    happen(rt, chat.customer(0, "othello is a play"))
    until(rt, 60)
    assert said(rt, HELLO) == []
    assert [due for _, due in jobs(rt, "trigger")] == [pytest.approx(START + 900)]  # only long-chat's is pending


def test_twice_in_a_row_fires_at_the_second_message_once_until_an_agent_replies(rt):
    chat = Chat()
    happen(rt, chat.customer(0, "one"))
    assert said(rt, TWICE) == []
    happen(rt, chat.customer(1, "two"))
    assert said(rt, TWICE) == [START] and tagged(rt) == ["waiting"]  # fired on the event, not on a tick
    happen(rt, chat.customer(2, "three"), chat.bot(3), chat.customer(4, "four"))  # the bot's message counts for nothing
    assert said(rt, TWICE) == [START]
    happen(rt, chat.agent(5), chat.customer(6, "five"))
    assert said(rt, TWICE) == [START]
    happen(rt, chat.customer(7, "six"))
    assert said(rt, TWICE) == [START, START]
    assert tagged(rt) == ["waiting"]  # a tag goes on once per thread


def test_a_bot_chat_with_no_reply_for_60_seconds_fires_once_per_thread(dry_settings, fake_redis, clock):
    rt = Runtime.build(dry_settings, fake_redis, rules=RULES, clock=clock)
    chat = Chat("lhc", thread=CHAT_ID)
    lhc_chat = {"chat": {"status": 5, "last_user_msg_time": int(START)}}
    happen(rt, Event(key="lhc:1:msg:1", source="lhc", kind=Kind.MESSAGE, chat_id=CHAT_ID, thread_id=CHAT_ID,
                     author_role=Role.CUSTOMER, text="help", time=at(0), raw=lhc_chat))
    until(rt, 59)
    assert said(rt, BOT_NO_REPLY) == []
    until(rt, 61)
    assert said(rt, BOT_NO_REPLY) == [START + 60]
    later = {"chat": {"status": 5, "last_user_msg_time": int(START) + 100}}
    happen(rt, Event(key="lhc:1:msg:2", source="lhc", kind=Kind.MESSAGE, chat_id=CHAT_ID, thread_id=CHAT_ID,
                     author_role=Role.BOT, text="bot", time=at(80), raw=later),
           Event(key="lhc:1:msg:3", source="lhc", kind=Kind.MESSAGE, chat_id=CHAT_ID, thread_id=CHAT_ID,
                 author_role=Role.CUSTOMER, text="still here", time=at(100), raw=later))
    until(rt, 200)
    assert said(rt, BOT_NO_REPLY) == [START + 60]  # repeat: once
    assert chat.source == "lhc"


# --- reordering, duplicates, races --------------------------------------------------------------


def scenario(chat: Chat) -> list[list[Event]]:
    """Bursts of events: each burst is delivered shuffled and twice; time passes between bursts."""
    return [
        [chat.started(0), chat.customer(0, "hello"), chat.customer(1, "anyone?")],
        [chat.agent(40), chat.customer(41, "are you there")],
        [chat.customer(90, "hello?")],
    ]


def run(rt: Runtime, bursts: list[list[Event]], shuffle: random.Random | None) -> list[tuple[str, float]]:
    times = [START + 30, START + 80, START + 200]
    for burst, until_time in zip(bursts, times, strict=True):
        if shuffle:
            burst = burst * 2
            shuffle.shuffle(burst)
        happen(rt, *burst)
        until(rt, until_time - START)
    return [(r["text"], r["at"]) for r in records(rt) if r["action"] == "send_event"]


@pytest.mark.parametrize("seed_", range(5))
def test_every_delivery_twice_and_shuffled_ends_in_the_same_decisions(dry_settings, fake_redis, seed_):
    def fresh(prefix: str) -> Runtime:
        settings = dry_settings.__class__(**{**dry_settings.__dict__, "key_prefix": prefix})
        return Runtime.build(settings, fake_redis, rules=RULES, clock=Clock(START))

    ordered = run(fresh("a:"), scenario(Chat()), None)
    shuffled = run(fresh("b:"), scenario(Chat()), random.Random(seed_))
    assert ordered == shuffled
    assert [text for text, _ in ordered] == [TWICE, HELLO, TWICE, HELLO]


def test_an_evaluation_on_state_that_moved_on_is_not_applied(rt):
    chat = Chat()
    happen(rt, chat.customer(0, "hello"))
    snap = rt.triggers.observe(THREAD_ID, None, source="livechat", organization=None, chat_id=CHAT_ID,
                               tags_key=rt.state.tags_key(THREAD_ID, "applied"), read_tags=False)
    happen(rt, chat.agent(1))  # a concurrent worker's event
    assert rt.triggers.decide(THREAD_ID, snap.version, {"twice-in-a-row": "fire"}, "", None, "fire|", START) is None
    assert said(rt) == []


# --- actions ---------------------------------------------------------------------------------


def test_a_worker_lost_after_the_window_fired_leaves_a_backstop_that_runs_the_actions_once(rt, monkeypatch):
    chat = Chat()
    lost = []
    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr("workers.dispatch.run_handler", _lose_act(lost))
        happen(rt, chat.customer(0, "one"), chat.customer(1, "two"))
    assert lost == ["triggers.act"] and said(rt) == []
    ((member, due),) = jobs(rt, "fire")
    assert member == f"fire|livechat||{CHAT_ID}|{THREAD_ID}|twice-in-a-row|1" and due == START + LEASE_SECONDS
    run_due(rt, START + LEASE_SECONDS)
    run_due(rt, START + 3 * LEASE_SECONDS)
    assert said(rt, TWICE) == [START + LEASE_SECONDS] and tagged(rt) == ["waiting"] and jobs(rt, "fire") == []


def _lose_act(lost: list[str]):  # type: ignore[no-untyped-def]
    from workers import dispatch as dispatch_module

    real = dispatch_module.run_handler

    def run_handler(name, event, rt, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "triggers.act":
            lost.append(name)
            raise SystemExit("worker lost")
        return real(name, event, rt, *args, **kwargs)

    return run_handler


def test_an_action_that_fails_is_retried_on_its_own_and_the_window_stays_spent(make_live, livechat, clock):
    seed(livechat)
    rt = make_live(livechat, rules=RULES)
    livechat.fail_next("send_event", status=503)
    chat = Chat()
    happen(rt, chat.customer(0, "one"), chat.customer(1, "two"))
    retries = [m for m, _ in jobs(rt, "retry")]
    assert len(retries) == 1 and '"handler":"triggers.act"' in retries[0] and jobs(rt, "fire") == []
    assert len(livechat.calls("tag_thread")) == 1  # the other action went ahead
    clock.advance(10)
    run_due(rt)
    assert [c.json["event"]["text"] for c in livechat.calls("send_event")] == [TWICE, TWICE]  # the first refused
    assert len(livechat.calls("tag_thread")) == 1 and jobs(rt, "retry") == []


def test_an_action_refused_for_good_is_dead_lettered_once(make_live, livechat):
    seed(livechat)
    rt = make_live(livechat, rules=RULES)
    livechat.fail_next("send_event", error_type="authorization", times=10)
    chat = Chat()
    happen(rt, chat.customer(0, "one"), chat.customer(1, "two"), chat.customer(2, "three"))
    (item,) = rt.dead_letters.list()
    assert (item["handler"], item["event"]["kind"]) == ("triggers.act", "trigger_fired")
    assert item["event"]["raw"] == {"trigger": "twice-in-a-row", "window": 1, "platform": "livechat",
                                    "organization": ""}


def test_a_bot_not_accepting_chats_skips_the_message_and_spends_the_window(make_live, livechat):
    seed(livechat)
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"
    rt = make_live(livechat, rules=RULES)
    chat = Chat()
    happen(rt, chat.customer(0, "one"), chat.customer(1, "two"), chat.customer(2, "three"))
    assert livechat.calls("send_event") == [] and len(livechat.calls("tag_thread")) == 1  # tags regardless
    (skip,) = records(rt, "send_event", "skipped")
    assert "not_accepting_chats" in skip["reason"]


def test_a_trigger_gone_from_the_rules_does_nothing_when_its_backstop_runs(rt, fake_redis, dry_settings, clock):
    happen(rt, Chat().customer(0, "one"))
    later = Runtime.build(dry_settings, fake_redis, rules=Rules(), clock=clock)
    triggers.act(triggers.fired_event("livechat", "", CHAT_ID, THREAD_ID, "twice-in-a-row", "1"), later)
    assert said(later) == []


# --- the state ----------------------------------------------------------------------------------


def view(rt: Runtime):  # type: ignore[no-untyped-def]
    snap = rt.triggers.observe(THREAD_ID, None, source="", organization=None, chat_id=CHAT_ID,
                               tags_key=rt.state.tags_key(THREAD_ID, "applied"), read_tags=True)
    return snap.view


def test_the_state_follows_the_events_by_their_own_times(rt):
    chat = Chat()
    happen(rt, chat.customer(10, "hello"), chat.started(5, customer_email="Jane@Example.org"), chat.agent(20),
           chat.customer(30, "x"), chat.bot(40), chat.customer(35, "y"), chat.agent(15))
    v = view(rt)
    assert (v.started, v.last_customer, v.last_agent) == (START + 5, START + 35, START + 20)
    assert (v.last_author, v.in_a_row, v.messages, v.waiting_since) == ("bot", 2, 5, START + 30)
    assert v.customer_email == "jane@example.org" and v.status == "open" and v.source == "livechat"
    assert v.message_facts == frozenset()  # "y", the last customer message, has none of the words
    happen(rt, chat.ended(50))
    assert view(rt).status == "ended"


def unnamed(event: Event) -> Event:
    """The event as a platform sends it that names the author but not their role (LiveChat's)."""
    return dataclasses.replace(event, author_role=None)


def test_a_message_authors_role_known_to_the_chat_is_read_with_the_triggers_state(rt):
    rt.state.remember_users(CHAT_ID, [User(CUSTOMER_ID, "customer"), User(AGENT_ID, "agent")], frozenset())
    chat = Chat()
    first, second = unnamed(chat.customer(0, "one")), unnamed(chat.customer(1, "two"))
    assert rt.evident_role(first) is None
    triggers.observe(first, rt)
    assert rt.evident_role(first) is Role.CUSTOMER  # found with the state: the tags' matching asks no more
    happen(rt, second, unnamed(chat.agent(2)))
    assert said(rt, TWICE) == [START] and view(rt).last_author == "agent"


def test_a_message_author_the_chat_does_not_know_is_asked_of_the_platform_and_counted_once(make_live, livechat):
    seed(livechat)
    rt = make_live(livechat, rules=RULES)
    chat = Chat()
    happen(rt, unnamed(chat.customer(0, "one")))
    assert len(livechat.calls("get_chat")) == 1 and rt.state.role(CHAT_ID, CUSTOMER_ID) is Role.CUSTOMER
    happen(rt, unnamed(chat.customer(1, "two")))
    assert len(livechat.calls("get_chat")) == 1  # remembered since: read with the state
    assert view(rt).messages == 2 and [c.json["event"]["text"] for c in livechat.calls("send_event")] == [TWICE]


def test_a_message_whose_author_nobody_knows_changes_nothing(rt):
    chat = Chat()
    happen(rt, chat.started(0), unnamed(chat.customer(1, "one")))
    assert view(rt).messages == 0 and view(rt).last_author is None


def test_a_redelivered_message_counts_once(rt):
    chat = Chat()
    first = chat.customer(0, "hello")
    happen(rt, first, first, first)
    assert (view(rt).messages, view(rt).in_a_row) == (1, 1)


def test_ratings_tags_and_the_customer_leaving(rt):
    chat = Chat()
    happen(rt, chat.customer(0), chat.customer(1))
    happen(rt, Event(key="r", source="livechat", kind=Kind.RATED, chat_id=CHAT_ID, thread_id=THREAD_ID, rating=0,
                     time=at(2)),
           Event(key="t", source="livechat", kind=Kind.TAGGED, chat_id=CHAT_ID, thread_id=THREAD_ID, tag="vip",
                 time=at(3)),
           Event(key="l", source="livechat", kind=Kind.CUSTOMER_LEFT, chat_id=CHAT_ID, thread_id=THREAD_ID,
                 time=at(4)))
    v = view(rt)
    assert v.rating == 0 and "vip" in v.tags and "waiting" in v.tags  # twice-in-a-row's own tag
    assert (v.in_a_row, v.waiting_since) == (0, None)  # nobody waits once the customer left
    happen(rt, Event(key="c", source="livechat", kind=Kind.RATING_CANCELLED, chat_id=CHAT_ID, thread_id=THREAD_ID,
                     time=at(5)))
    assert view(rt).rating is None


def test_a_tag_made_earlier_in_the_task_is_seen_by_the_next_evaluation(dry_settings, fake_redis, clock, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("""
triggers:
  - {name: twice, when: [{field: customer_messages_in_a_row, op: gte, value: 2}], actions: [{tag: waiting}]}
  - {name: follow, when: [{field: tags, op: contains, value: waiting}], actions: [{message: Following up.}]}
""")
    rt = Runtime.build(dry_settings, fake_redis, rules=load_rules(str(rules)), clock=clock)
    chat = Chat()
    dispatch([chat.customer(0), chat.customer(1), chat.customer(2)], rt)  # one task
    assert said(rt, "Following up.") == [START]
    assert tagged(rt) == ["waiting"] and view(rt).tags == {"waiting"}


def test_the_state_expires_and_sooner_once_the_thread_ended(rt, fake_redis):
    chat = Chat()
    happen(rt, chat.customer(0, "hello"))
    key = rt.triggers.key(THREAD_ID)
    assert 0 < fake_redis.ttl(key) <= rt.settings.chat_ttl_seconds and fake_redis.ttl(f"{key}:messages") > 0
    happen(rt, chat.ended(10))
    assert 0 < fake_redis.ttl(key) <= rt.settings.ended_chat_ttl_seconds


def test_no_triggers_no_state(dry_settings, fake_redis, clock):
    rt = Runtime.build(dry_settings, fake_redis, rules=Rules(), clock=clock)
    happen(rt, Chat().customer(0, "hello"))
    assert not fake_redis.exists(rt.triggers.key(THREAD_ID))


def test_a_failed_send_to_an_ended_chat_is_recorded_not_retried(make_live, livechat):
    seed(livechat)
    rt = make_live(livechat, rules=RULES)
    livechat.deactivate(CHAT_ID)
    chat = Chat()
    happen(rt, chat.customer(0), chat.customer(1))
    assert records(rt, "send_event", "skipped") and jobs(rt, "retry") == []


def test_the_platforms_attributes_of_an_older_event_delivered_late_do_not_win(rt):
    def message(n: int, seconds: float, status: int) -> Event:
        return Event(key=f"lhc:1:msg:{n}", source="lhc", kind=Kind.MESSAGE, chat_id=CHAT_ID, thread_id=THREAD_ID,
                     author_role=Role.CUSTOMER, text="hi", time=at(seconds),
                     raw={"chat": {"status": status, "last_user_msg_time": int(START + seconds), "nick": "x"}})

    happen(rt, message(2, 10, 1), message(1, 5, 5))
    assert view(rt).attributes == {"status": "1", "last_user_msg_time": str(int(START + 10))}  # only those read


def test_on_a_whole_second_tie_the_message_that_arrived_last_is_the_last(rt):
    chat = Chat()
    happen(rt, chat.agent(10), chat.customer(10, "hello"))  # LHC's clock: the same second
    v = view(rt)
    assert v.last_author == "customer" and v.last_customer == v.last_agent == START + 10
    assert (v.in_a_row, v.waiting_since) == (1, START + 10)  # after the reply: still waiting
    happen(rt, chat.customer(10, "hello?"), chat.agent(10))  # a second reply in that second answers both
    v = view(rt)
    assert (v.last_author, v.in_a_row, v.waiting_since, v.messages) == ("agent", 0, None, 4)


def test_a_redelivered_bot_message_does_not_take_the_last_word_back(rt):
    chat = Chat()
    bot = chat.bot(10)
    happen(rt, chat.customer(5), bot, chat.customer(10, "and?"), bot)
    v = view(rt)
    assert (v.last_author, v.messages, v.started) == ("customer", 2, START + 5)


def test_a_late_rating_or_tag_after_the_state_expired_brings_back_nothing(rt, fake_redis):
    happen(rt, Event(key="r", source="livechat", kind=Kind.RATED, chat_id=CHAT_ID, thread_id=THREAD_ID, rating=1,
                     time=at(2)),
           Event(key="t", source="livechat", kind=Kind.TAGGED, chat_id=CHAT_ID, thread_id=THREAD_ID, tag="x",
                 time=at(3)))
    assert not fake_redis.exists(rt.triggers.key(THREAD_ID))


def test_an_end_delivered_before_the_transcript_keeps_the_thread_ended(dry_settings, fake_redis, clock):
    rt = Runtime.build(dry_settings, fake_redis, rules=Rules(nudge=NudgeRule(after_seconds=5, message="Hi")),
                       clock=clock)
    chat = Chat()  # as LiveChat v2 sends it: the end first, then the chat's messages
    happen(rt, chat.ended(100), chat.customer(0, "hello"), chat.customer(5, "are you there"))
    until(rt, 200)
    assert view(rt).status == "ended" and said(rt) == []  # the nudge is for open threads


def test_the_rating_and_email_are_kept_by_their_events_times(rt):
    chat = Chat()
    happen(rt, chat.customer(0),
           Event(key="c", source="livechat", kind=Kind.RATING_CANCELLED, chat_id=CHAT_ID, thread_id=THREAD_ID,
                 time=at(20)),
           Event(key="r", source="livechat", kind=Kind.RATED, chat_id=CHAT_ID, thread_id=THREAD_ID, rating=1,
                 time=at(10)))
    assert view(rt).rating is None  # cancelled after it was given, though delivered before


def test_a_stale_evaluation_that_found_the_condition_false_still_reopens_the_window(rt):
    chat = Chat()
    happen(rt, chat.customer(0, "one"), chat.customer(1, "two"))
    assert said(rt, TWICE) == [START]
    read = lambda: rt.triggers.observe(THREAD_ID, None, source="", organization=None, chat_id=CHAT_ID,  # noqa: E731
                                       tags_key=rt.state.tags_key(THREAD_ID, "applied"), read_tags=False)
    reply = chat.agent(2)
    rt.triggers.observe(THREAD_ID, triggers._change(reply, rt, Role.AGENT), source="livechat", organization=None,
                        chat_id=CHAT_ID, tags_key="x", read_tags=False)
    after_reply = read()  # worker A: the agent's reply, the condition false...
    assert after_reply.view.in_a_row == 0
    happen(rt, chat.customer(3, "three"), chat.customer(4, "four"))  # ...while worker B takes two more messages
    assert rt.triggers.decide(THREAD_ID, after_reply.version, {"twice-in-a-row": "reopen"}, "", None, "fire|",
                              START) is None  # A's state is stale: no fire, no schedule, but the reopen stands
    happen(rt, chat.customer(5, "five"))
    assert said(rt, TWICE) == [START, START]


def test_a_moment_after_the_state_expires_is_not_scheduled(dry_settings, fake_redis, clock):
    settings = dry_settings.__class__(**{**dry_settings.__dict__, "ended_chat_ttl_seconds": 20})
    rt = Runtime.build(settings, fake_redis, rules=RULES, clock=clock)
    chat = Chat()
    happen(rt, chat.customer(0, "hello"))
    assert [due for _, due in jobs(rt, "trigger")] == [START + 25]
    happen(rt, chat.ended(1))  # hello-no-reply could still turn at 25, but the state is gone by then
    assert jobs(rt, "trigger") == []
