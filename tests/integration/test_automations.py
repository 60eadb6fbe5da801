"""End to end: a whole LiveChat conversation through the real ingress, Redis, Celery worker and beat.

Real gunicorn, a real Celery worker and beat, the real Redis of ``pipeline_env``; FakeLiveChat and
FakeMailchimp run in this process on loopback and record every call the automations make.
The conversation (tests/integration/conversation.py) is mirrored into FakeLiveChat as it
happens — events stored, the agent joining, the chat ending — before each webhook is posted,
so ``get_chat`` answers what the real API would at that moment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import signal
import time
from collections import Counter
from typing import Any

import pytest

from chathooks.events import epoch
from tests.fakes.http_server import Request
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import wait_for
from tests.integration.conversation import Conversation, Step
from tests.integration.processes import start_worker
from tests.integration.system import (
    APOLOGY,
    BAD,
    BAD_TAG,
    EXPECTED_TAGS,
    FOLLOW_UP,
    GREETING,
    IMPATIENT,
    LIVECHAT_WRITES,
    MEMBER_TAGS,
    NUDGE,
    OPENING,
    READS,
    SHUFFLE_SEED,
    System,
    bot_messages,
    happen,
    sends,
    start_silence,
)

pytestmark = pytest.mark.integration



def call_line(service: str, call: str, payload: Any) -> str:
    return f"{service} {call} {json.dumps(payload, sort_keys=True)}"


def signature(lc: FakeLiveChat, mc: FakeMailchimp, conv: Conversation) -> list[str]:
    """Every side effect sent outside, one canonical line each (the chat's ids made symbolic), sorted."""
    lines = []
    for r in lc.calls():
        if r.route in READS:
            continue
        params = dict(r.json or {})
        if r.route == "send_event":  # custom_id is ours to choose (it names the once-guard)
            params["event"] = {k: v for k, v in params["event"].items() if k != "custom_id"}
        lines.append(call_line("livechat", r.route, params))
    lines += [call_line("mailchimp", f"{r.method} {r.path}", r.json) for r in mc.calls()]
    return sorted(line.replace(conv.chat_id, "<chat>").replace(conv.thread_id, "<thread>") for line in lines)


def expected_signature(conv: Conversation, mc: FakeMailchimp, nudge: bool) -> list[str]:
    """The conversation's outbound calls: each tag once, one list upsert (+ member tags), one reply per rating."""
    member = f"/3.0/lists/{mc.list_id}/members/{hashlib.md5(conv.customer_email.lower().encode()).hexdigest()}"
    first, last = conv.customer_name.split()
    lines = [call_line("livechat", "tag_thread", {"chat_id": "<chat>", "thread_id": "<thread>", "tag": tag})
             for tag in EXPECTED_TAGS]
    lines += [call_line("livechat", "send_event",
                        {"chat_id": "<chat>", "event": {"type": "message", "text": text, "visibility": "all"}})
              for text in [BAD] + ([NUDGE] if nudge else [])]
    lines.append(call_line("mailchimp", f"PUT {member}", {
        "email_address": conv.customer_email, "status_if_new": "subscribed",
        "merge_fields": {"FNAME": first, "LNAME": last}}))
    lines.append(call_line("mailchimp", f"POST {member}/tags",
                           {"tags": [{"name": t, "status": "active"} for t in MEMBER_TAGS]}))
    return sorted(lines)


def assert_outcome(system: System, lc: FakeLiveChat, mc: FakeMailchimp, conv: Conversation, nudge: bool) -> None:
    """The exact outbound calls, and LiveChat's and Mailchimp's resulting state."""
    assert not lc.errors and not mc.errors, (lc.errors, mc.errors)
    assert system.dead_letters() == [], system.dead_letters()
    unexpected = {r.route for r in lc.calls()} - READS - LIVECHAT_WRITES
    assert not unexpected, f"unexpected LiveChat calls: {unexpected}"
    assert signature(lc, mc, conv) == expected_signature(conv, mc, nudge)

    # Each tag_thread exactly once, as the agent (PAT), never as the bot.
    tag_calls = lc.calls("tag_thread")
    assert Counter(r.json["tag"] for r in tag_calls) == Counter(EXPECTED_TAGS)
    for r in tag_calls:
        assert r.headers["Authorization"] == agent_auth(lc) and "X-Author-Id" not in r.headers
    with lc.lock:
        assert sorted(lc.chats[conv.chat_id]["thread"]["tags"]) == sorted(EXPECTED_TAGS)

    # Every bot message reached the thread, authored by the bot.
    texts = [BAD] + ([NUDGE] if nudge else [])
    assert sorted(e["text"] for e in bot_messages(lc, conv)) == sorted(texts)
    for r in sends(lc):
        assert_authored_by_bot(lc, r)
    if lc.api_version == "3.5":
        assert not lc.calls("issue_bot_token")

    # One list member, with the name split into the merge fields and the member tags.
    members = mc.members()
    assert list(members) == [conv.customer_email.lower()]
    member = members[conv.customer_email.lower()]
    assert member["status"] == "subscribed" and member["tags"] == MEMBER_TAGS
    assert member["merge_fields"] == {"FNAME": "Jane", "LNAME": "Roe"}
    assert len(mc.calls("member")) == 1 and len(mc.calls("tags")) == 1


def agent_auth(lc: FakeLiveChat) -> str:
    """The Authorization header of the configured agent's PAT."""
    return "Basic " + base64.b64encode(f"{lc.account_id}:{lc.pat}".encode()).decode()


def assert_authored_by_bot(lc: FakeLiveChat, r: Request) -> None:
    if lc.api_version == "3.5":
        assert r.headers.get("X-Author-Id") == lc.bot_id
        assert r.headers["Authorization"] == agent_auth(lc)
    else:
        assert "X-Author-Id" not in r.headers
        auth = r.headers["Authorization"]
        assert auth.startswith("Bearer ")
        with lc.lock:
            assert lc.bot_tokens.get(auth.removeprefix("Bearer ")) == lc.bot_id, "not a bot token of our bot"


def assert_nudged_in_time(lc: FakeLiveChat, deadline: float) -> Request:
    """Exactly one nudge, received no earlier than the deadline and no later than 2 s after it."""
    nudges = sends(lc, NUDGE)
    assert len(nudges) == 1, nudges
    at = nudges[0].time
    print(f"nudge sent {at - deadline:+.3f}s after its deadline")
    assert deadline <= at <= deadline + 2.0, f"nudge at deadline{at - deadline:+.3f}s"
    assert_authored_by_bot(lc, nudges[0])
    return nudges[0]


def posted_by_bot(lc: FakeLiveChat, conv: Conversation, text: str) -> dict[str, Any]:
    """The event our bot posted with ``text``, as LiveChat stored it (to send its incoming_event)."""
    found = [e for e in bot_messages(lc, conv) if e["text"] == text]
    assert len(found) == 1, found
    return found[0]


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)
@pytest.mark.parametrize("version", ["3.5", "3.6"])
def test_whole_conversation_tags_syncs_nudges_and_answers_the_rating_once(version, broker, launch, mailchimp):
    after = 3
    system, lc = launch(version, after)
    conv = Conversation(version)

    def now_happens(step: Step) -> None:
        happen(system, lc, conv, step)

    now_happens(conv.routing_status("accepting_chats"))
    t0 = time.time()
    now_happens(conv.start(t0, OPENING))
    now_happens(conv.bot_says(GREETING, time.time()))
    time.sleep(0.3)
    now_happens(conv.customer_says(FOLLOW_UP, time.time()))

    # The silence clock started at the first customer message (the bot's greeting does not count).
    assert conv.events[1]["text"] == OPENING
    deadline = epoch(conv.events[1]["created_at"]) + after
    wait_for(lambda: mailchimp.calls("tags"), timeout=10, what="the list upsert")
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the nudge")
    nudge = assert_nudged_in_time(lc, deadline)

    # LiveChat reports the bot's own nudge; the customer writes again. The nudge is no agent reply,
    # so this is still the same silence window: no second nudge, even well past this message's
    # own "deadline" (which would be due if the bot's message had closed the window).
    wait_for(lambda: bot_messages(lc, conv), timeout=5, what="the nudge stored")
    now_happens(conv.from_api(posted_by_bot(lc, conv, NUDGE)))
    impatient = time.time()
    now_happens(conv.customer_says(IMPATIENT, impatient))
    now_happens(conv.agent_joins(time.time()))
    time.sleep(max(impatient + after + 1.5 - time.time(), 0))
    assert len(sends(lc, NUDGE)) == 1, "a second nudge in one silence window"
    now_happens(conv.agent_says(APOLOGY, time.time()))

    # The customer rates the chat bad: both signals arrive; one reply, one bad-rating tag.
    for step in conv.rated(0, time.time()):
        now_happens(step)
    wait_for(lambda: sends(lc, BAD) and [r for r in lc.calls("tag_thread") if r.json["tag"] == BAD_TAG],
             timeout=10, what="the rating reply and the bad-rating tag")
    wait_for(lambda: len(bot_messages(lc, conv)) == 2, timeout=5, what="the rating reply stored")
    now_happens(conv.from_api(posted_by_bot(lc, conv, BAD)))

    # The agent closes the chat: the matched tags are applied.
    now_happens(conv.deactivated())
    wait_for(lambda: len(lc.calls("tag_thread")) >= len(EXPECTED_TAGS), timeout=10, what="every tag applied")
    system.settle()

    assert_outcome(system, lc, mailchimp, conv, nudge=True)
    assert sends(lc, NUDGE) == [nudge]


@pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)
@pytest.mark.parametrize("version", ["3.5", "3.6"])
def test_triplicated_shuffled_deliveries_make_the_same_outbound_calls(version, broker, launch, mailchimp):
    """The conversation happened; LiveChat delivers every webhook 3 times, in a shuffled order.

    The nudge's timing is kept out: its rule's threshold (30 s) exceeds every silence in the
    conversation, so in event time no window reaches a deadline, whatever order the deliveries
    take. FakeLiveChat keeps the chat active until all deliveries are handled, so ``get_chat``
    answers the same whatever the order (whether a late rating is answered otherwise depends on
    when the chat really ended, which is a race, not ordering).
    """
    system, lc = launch(version, 30)
    conv = Conversation(version)
    t0 = time.time() - 10  # the same timeline as the real-time test, already over
    steps = [conv.routing_status("accepting_chats"), conv.start(t0, OPENING),
             conv.bot_says(GREETING, t0 + 0.2), conv.customer_says(FOLLOW_UP, t0 + 0.6),
             conv.customer_says(IMPATIENT, t0 + 4.0), conv.agent_joins(t0 + 4.3),
             conv.agent_says(APOLOGY, t0 + 4.6), *conv.rated(0, t0 + 5.5)]
    lc.seed_chat(conv.chat())
    steps.append(conv.deactivated())

    deliveries = [step for step in steps for _ in range(3)]
    random.Random(SHUFFLE_SEED).shuffle(deliveries)
    assert [d.action for d in deliveries] != [s.action for s in steps for _ in range(3)]
    statuses: dict[str, list[str]] = {}
    for step in deliveries:
        statuses.setdefault(step.what, []).append(system.post(step.body)["status"])
    # The ingress queues each delivery once and answers its retries as duplicates.
    assert all(s == ["queued", "duplicate", "duplicate"] for s in statuses.values()), statuses
    wait_for(lambda: len(lc.calls("tag_thread")) >= len(EXPECTED_TAGS) and sends(lc, BAD),
             timeout=20, what="every tag and the rating reply")
    system.settle()
    assert_outcome(system, lc, mailchimp, conv, nudge=False)


def test_nudge_fires_once_when_the_worker_restarts_before_the_deadline(launch, mailchimp, processes, tmp_path):
    after = 6
    system, lc = launch("3.6", after)
    conv = Conversation("3.6")
    deadline = start_silence(system, lc, conv, after)
    # The window is open (its deadline is in the scheduler) before the worker goes.
    wait_for(lambda: any(m.startswith("trigger|") for m, _ in system.schedule()), timeout=10,
             what="the nudge scheduled")
    assert [s for m, s in system.schedule() if m.startswith("trigger|")] == [pytest.approx(deadline, abs=1e-3)]

    system.worker.signal(signal.SIGTERM)
    system.worker.proc.wait(15)
    happen(system, lc, conv, conv.customer_says(FOLLOW_UP, time.time()))  # queued while no worker runs
    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    assert time.time() < deadline - 0.5, "the replacement worker took too long to start for this test"

    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the nudge")
    assert_nudged_in_time(lc, deadline)
    happen(system, lc, conv, conv.from_api(posted_by_bot(lc, conv, NUDGE)))
    time.sleep(1.5)  # another tick or two: still one nudge
    happen(system, lc, conv, conv.agent_joins(time.time()))
    happen(system, lc, conv, conv.agent_says(APOLOGY, time.time()))
    happen(system, lc, conv, conv.deactivated())
    wait_for(lambda: len(lc.calls("tag_thread")) >= 4, timeout=10, what="the tags")
    system.settle()
    assert sorted(r.json["tag"] for r in lc.calls("tag_thread")) == ["canned-apology", "order-status", "refund",
                                                                     "urgent"]
    assert len(sends(lc)) == 1 and len(bot_messages(lc, conv)) == 1
    assert len(mailchimp.calls("member")) == 1
    assert system.dead_letters() == []


def test_nudge_whose_send_fails_once_is_retried_with_backoff(launch):
    """A 503 on the nudge's send_event is transient: retried per the retry policy (first retry after 1-2 s)."""
    after = 3
    system, lc = launch("3.5", after)
    conv = Conversation("3.5")
    lc.fail_next("send_event", error_type="service_unavailable")
    deadline = start_silence(system, lc, conv, after)
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the first nudge attempt")
    first = sends(lc, NUDGE)[0]
    assert deadline <= first.time <= deadline + 2.0
    # Retry 2 waits 1-2 s (RetryPolicy), then up to a beat tick (1 s) to be picked up.
    wait_for(lambda: len(sends(lc, NUDGE)) >= 2, timeout=6, what="the nudge retried with backoff")
    assert sends(lc, NUDGE)[1].time - first.time <= 4.0
    system.settle()
    assert len(sends(lc, NUDGE)) == 2 and len(bot_messages(lc, conv)) == 1
    assert system.dead_letters() == []


def test_nudge_refused_for_good_is_dead_lettered_not_retried(launch):
    """``authorization`` is final (SPEC §6): one attempt, then the dead-letter store with the error."""
    after = 3
    system, lc = launch("3.5", after)
    conv = Conversation("3.5")
    lc.fail_next("send_event", error_type="authorization", times=100)
    deadline = start_silence(system, lc, conv, after)
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the nudge attempt")
    wait_for(system.dead_letters, timeout=5, what="the nudge dead-lettered")
    system.settle()
    assert len(sends(lc, NUDGE)) == 1, "a final error was retried"
    [item] = system.dead_letters()
    assert item["errors"][-1]["type"] == "authorization"
    assert conv.chat_id in json.dumps(item) and conv.thread_id in json.dumps(item)
