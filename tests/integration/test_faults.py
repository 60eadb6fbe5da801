"""Fault injection end to end: workers killed mid-task, Redis restarted under load, the APIs failing.

Real gunicorn, Celery worker and beat (``launch`` from test_automations) against FakeLiveChat and
FakeMailchimp. Each scenario counts the side effects where they land, at the fakes: nothing lost,
nothing done twice. The environment keeps it quick: a 5 s task time limit (so the API clients time
out after 1.25 s), retries 0.2-0.4 s apart at first, few attempts.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import psutil
import pytest
import redis
import requests

from chathooks.embedded_redis import EmbeddedRedis
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import member_hash
from tests.helpers import wait_for
from tests.integration.conversation import Conversation
from tests.integration.processes import Process, start_worker
from tests.integration.system import (
    BAD,
    BAD_TAG,
    OPENING,
    System,
    bot_messages,
    happen,
    message,
    metric,
    recorded,
    sends,
)

pytestmark = pytest.mark.integration

TASK_TIME_LIMIT = 5
READ_TIMEOUT = TASK_TIME_LIMIT / 4  # workers.outbound.client_timeout
RETRY_BASE = 0.4
ATTEMPTS = 3
FAST = {
    "CHATHOOKS_TASK_TIME_LIMIT": str(TASK_TIME_LIMIT),
    "CHATHOOKS_RETRY_BASE": str(RETRY_BASE),
    "CHATHOOKS_RETRY_CAP": "2",
    "CHATHOOKS_RETRY_ATTEMPTS": str(ATTEMPTS),
}
VISIBILITY = 8
OPENING_TAGS = ["order-status", "refund"]  # what OPENING matches; tagged in this order
REFUND = "I want a refund"  # matches one tag only
NEVER = 60  # seconds: a nudge threshold no scenario reaches, a hold no client waits out


@pytest.fixture
def fast(pipeline_env: dict[str, str]) -> dict[str, str]:
    """The pipeline's environment (``launch`` reads it) with the quick tuning."""
    pipeline_env.update(FAST)
    return pipeline_env


@pytest.fixture
def own_redis(fast: dict[str, str], tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own: these scenarios restart or freeze it, or leave work in kombu's global
    ``unacked`` hash for a worker with a short visibility timeout (which would restore anyone's)."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        fast.update(REDIS_URL=server.url, CHATHOOKS_VISIBILITY_TIMEOUT=str(VISIBILITY))
        yield server


# --- helpers ---------------------------------------------------------------------------------


def seeded(lc: FakeLiveChat, opening: str = OPENING) -> Conversation:
    """A chat under way at LiveChat (the customer's opening message in its thread); no webhook sent yet."""
    conv = Conversation("3.6")
    conv.start(time.time() - 5, opening)
    lc.seed_chat(conv.chat())
    return conv


def rate_bad(system: System, lc: FakeLiveChat, conv: Conversation) -> None:
    """The customer rates the chat bad: the bot answers (send_event) and the thread is tagged (tag_thread)."""
    happen(system, lc, conv, conv.rated(0, time.time())[0])


def end(system: System, lc: FakeLiveChat, conv: Conversation) -> None:
    """The chat ends: the tags its messages matched are applied (tag_thread)."""
    happen(system, lc, conv, conv.deactivated())


def tag_calls(lc: FakeLiveChat, conv: Conversation) -> Counter[str]:
    return Counter(r.json["tag"] for r in lc.calls("tag_thread") if r.json["chat_id"] == conv.chat_id)


def send_calls(lc: FakeLiveChat, conv: Conversation) -> list:  # type: ignore[type-arg]
    return [r for r in sends(lc) if r.json["chat_id"] == conv.chat_id]


def thread_tags(lc: FakeLiveChat, conv: Conversation) -> list[str]:
    return sorted(lc.chat(conv.chat_id)["thread"].get("tags", []))


def processed(system: System) -> float:
    return metric(system.url, "chathooks_deliveries_processed_total", source="livechat")


def pool_process_of(worker: Process, client: tuple[str, int]) -> psutil.Process:
    """The worker's pool process that holds the connection a fake recorded a request from."""
    for child in psutil.Process(worker.proc.pid).children():
        if any(c.laddr and c.laddr.port == client[1] for c in child.net_connections("tcp")):
            return child
    raise AssertionError(f"no pool process of {worker.name} holds a connection from {client}")


# --- 1. workers killed mid-task --------------------------------------------------------------


def test_a_pool_process_killed_mid_send_is_requeued_and_the_reply_sent_once(fast, launch):
    """The child dies after LiveChat posted the bot's reply, before the answer came back (the crash window).

    The master requeues the message (task_reject_on_worker_lost); the rerun tags the thread and, while
    the dead claim's lease (the task time limit) lasts, is held off and retried. Whoever comes after the
    lease takes the claim over, finds the reply in get_chat by its custom_id and marks it done instead
    of sending it again.
    """
    system, lc = launch("3.6", NEVER)
    conv = seeded(lc)
    lc.fail_next("send_event", delay=NEVER, process=True, chat_id=conv.chat_id)
    rate_bad(system, lc, conv)
    [held] = wait_for(lambda: send_calls(lc, conv), timeout=20, what="the bot's reply sent")
    pool_process_of(system.worker, held.client).kill()

    wait_for(lambda: tag_calls(lc, conv)[BAD_TAG], timeout=20, what="the requeued delivery to run again")
    wait_for(lambda: system.redis.get(f"{system.prefix}once:rating:{conv.thread_id}:0") == b"done", timeout=30,
             what="the reply's claim taken over and found done")
    system.settle()

    assert send_calls(lc, conv) == [held]
    assert [e["text"] for e in bot_messages(lc, conv)] == [BAD]
    assert tag_calls(lc, conv) == {BAD_TAG: 1}
    assert system.dead_letters() == []
    assert processed(system) == 1
    assert "WorkerLostError" in system.worker.log()


def test_a_worker_killed_whole_mid_tag_leaves_the_message_for_the_next_worker(own_redis, launch, processes,
                                                                               tmp_path):
    """Master and pool SIGKILLed after LiveChat applied the first tag, before it answered.

    The message stays in kombu's unacked hash; a worker started after the visibility timeout restores
    it when it starts consuming (kombu's first ``restore_visible``). The rerun reconciles with
    get_chat: the tag that landed is not sent again, the other is applied once.
    """
    system, lc = launch("3.6", NEVER)
    conv = seeded(lc)
    lc.fail_next("tag_thread", delay=NEVER, process=True, chat_id=conv.chat_id)
    end(system, lc, conv)
    wait_for(lambda: tag_calls(lc, conv), timeout=20, what="the first tag sent")
    system.worker.signal(signal.SIGKILL)
    system.worker.proc.wait(10)
    assert thread_tags(lc, conv) == OPENING_TAGS[:1]
    assert system.in_flight() == 1

    # kombu restores only what has been unacknowledged for longer than the visibility timeout.
    time.sleep(VISIBILITY + 0.5)
    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    wait_for(lambda: thread_tags(lc, conv) == OPENING_TAGS, timeout=20, what="the restored delivery's tags")
    system.settle()

    assert tag_calls(lc, conv) == Counter(OPENING_TAGS)
    assert system.dead_letters() == []
    assert processed(system) == 1


# --- 2. Redis restarted under load -----------------------------------------------------------


def test_redis_restarted_mid_stream_loses_nothing_and_repeats_nothing(fast, own_redis, launch, mailchimp, processes,
                                                                      tmp_path):
    """Deliveries queued and in the worker's hands when Redis restarts (AOF): each handled once.

    The worker cancels its running tasks and kombu puts what it held back on the queue as the
    connection drops; what it could not put back waits in kombu's unacked hash until a worker restores
    it after the visibility timeout (here a second worker, at its start: the running one sweeps only
    every 100 s with kombu's defaults). A cancelled task may leave a claim held for its lease (the task
    time limit); the handler's retry waits that out and takes it over.
    """
    fast["CHATHOOKS_RETRY_ATTEMPTS"] = "15"
    system, lc = launch("3.6", NEVER)
    convs = [Conversation("3.6", customer_email=f"customer.{n}@example.org") for n in range(8)]
    for conv in convs:
        happen(system, lc, conv, conv.start(time.time() - 5, OPENING))
    own_redis.restart()
    restarted = time.time()
    wait_for(lambda: system.http.get(f"{system.url}/readyz", timeout=10).status_code == 200, timeout=30,
             what="the ingress ready again")
    for conv in convs:
        end(system, lc, conv)
    wait_for(lambda: all(thread_tags(lc, conv) == OPENING_TAGS for conv in convs), timeout=30,
             what="the running worker to handle what was queued after the restart")

    time.sleep(max(restarted + VISIBILITY + 0.5 - time.time(), 0))
    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    wait_for(lambda: len(mailchimp.members()) == len(convs), timeout=20, what="every customer on the list")
    system.settle()

    for conv in convs:
        assert tag_calls(lc, conv) == Counter(OPENING_TAGS)
        # A task cut short after its upsert may repeat it: the same PUT, which Mailchimp applies idempotently.
        puts = {json.dumps(r.json) for r in mailchimp.calls("member") if member_hash(conv.customer_email) in r.path}
        assert len(puts) == 1
    assert sorted(mailchimp.members()) == sorted(conv.customer_email.lower() for conv in convs)
    assert system.dead_letters() == []
    assert processed(system) == 2 * len(convs)


# --- 3. Redis not answering at the ingress ---------------------------------------------------
# A Redis that refuses connections is test_pipeline's test_redis_down_is_503_then_recovers_without_restarts.


def test_a_hung_redis_is_a_503_and_the_retried_delivery_is_handled_once(own_redis, web, worker, pipeline_env):
    """Redis stops answering (SIGSTOP) without closing anything: the ingress gives up and answers 503,
    though its write is already in Redis's socket buffer and lands when Redis resumes. LiveChat's retry
    is then a duplicate: the delivery is queued, and handled, exactly once."""
    client = redis.Redis.from_url(own_redis.url)
    prefix = pipeline_env["CHATHOOKS_KEY_PREFIX"]
    with ThreadPoolExecutor(2) as pool:  # both gunicorn workers connect to Redis
        list(pool.map(lambda n: requests.post(f"{web}/webhooks/livechat", json=message(3, n), timeout=10), (1, 2)))
    body = message(3, 3)
    pid = client.info("server")["process_id"]
    os.kill(pid, signal.SIGSTOP)
    try:
        hung = requests.post(f"{web}/webhooks/livechat", json=body, timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert hung.status_code == 503

    retried = requests.post(f"{web}/webhooks/livechat", json=body, timeout=10).json()["status"]
    assert retried in ("queued", "duplicate")  # "duplicate": the write given up on landed after all
    wait_for(lambda: recorded(client, prefix) == 3, timeout=30, what="the worker to handle every delivery")
    time.sleep(1.5)  # nothing more may arrive
    assert recorded(client, prefix) == 3
    assert metric(web, "chathooks_webhooks_queued_total", source="livechat") == 3
    assert metric(web, "chathooks_deliveries_processed_total", source="livechat") == 3


# --- 4. the APIs failing ---------------------------------------------------------------------

RETRY_AFTER = 1
# How LiveChat fails a call (FakeLiveChat.fail_next's arguments), and the error type the worker records.
LIVECHAT_FAULTS = {
    "500": ({"status": 500}, "internal"),
    "429 with Retry-After": ({"status": 429, "retry_after": RETRY_AFTER}, "too_many_requests"),
    "too_many_requests in a 400": ({"status": 400, "error_type": "too_many_requests"}, "too_many_requests"),
    "slow, carried out late": ({"delay": READ_TIMEOUT + 0.4}, "timeout"),
    "slow, never carried out": ({"delay": READ_TIMEOUT + 0.4, "close": True}, "timeout"),
    "dropped": ({"close": True}, "connection"),
    "carried out, answer dropped": ({"close": True, "process": True}, "connection"),
}
LANDS = {"slow, carried out late", "carried out, answer dropped"}  # the failed call did the work anyway
CALLS = ("send_event", "tag_thread")


def fault_world(system: System, lc: FakeLiveChat, faults: list[str], times: int) -> dict[tuple[str, str], Conversation]:
    """One chat per fault and call, the call failing ``times`` times that way: the bot's reply to a bad
    rating (send_event), or the "refund" tag applied when the chat ends (tag_thread)."""
    convs = {}
    for fault in faults:
        for call, trigger in zip(CALLS, (rate_bad, end)):
            conv = convs[fault, call] = seeded(lc, REFUND)
            lc.fail_next(call, times=times, chat_id=conv.chat_id, **LIVECHAT_FAULTS[fault][0])
            trigger(system, lc, conv)
    return convs


def faulted(lc: FakeLiveChat, conv: Conversation, call: str) -> list:  # type: ignore[type-arg]
    """The attempts of the call the fault was aimed at, oldest first."""
    return [r for r in lc.calls(call) if r.json["chat_id"] == conv.chat_id]


def assert_backed_off(fault: str, attempts: list) -> None:  # type: ignore[type-arg]
    """Each retry came no sooner than the policy allows: Retry-After, as long again as a timeout, else the backoff."""
    least = {"429 with Retry-After": RETRY_AFTER}.get(fault, RETRY_BASE / 2)
    if LIVECHAT_FAULTS[fault][1] == "timeout":
        least = 2 * READ_TIMEOUT
    gaps = [b.time - a.time for a, b in pairwise(attempts)]
    assert all(gap >= least for gap in gaps), (fault, gaps, least)


def test_livechat_or_mailchimp_failing_once_is_retried_and_acts_once(fast, launch, mailchimp):
    system, lc = launch("3.6", NEVER)
    convs = fault_world(system, lc, list(LIVECHAT_FAULTS), times=1)
    listed = Conversation("3.6", customer_email="listed@example.org")
    mailchimp.fail_next("member", status=500, email=listed.customer_email)
    mailchimp.fail_next("member", status=429, retry_after=RETRY_AFTER, email=listed.customer_email)
    happen(system, lc, listed, listed.start(time.time() - 5, OPENING))
    end(system, lc, listed)
    wait_for(lambda: all(bot_messages(lc, c) if call == "send_event" else thread_tags(lc, c)
                         for (_, call), c in convs.items())
             and mailchimp.members(), timeout=40, what="every reply, tag and upsert")
    system.settle()

    assert system.dead_letters() == []
    for (fault, call), conv in convs.items():
        attempts = faulted(lc, conv, call)
        assert len(attempts) == (1 if fault in LANDS else 2), (fault, call, attempts)
        assert_backed_off(fault, attempts)
        if call == "send_event":
            assert [e["text"] for e in bot_messages(lc, conv)] == [BAD], fault
            assert tag_calls(lc, conv) == {BAD_TAG: 1}, fault
        else:
            assert thread_tags(lc, conv) == ["refund"], fault
    assert len(mailchimp.calls("member")) == 3  # a 500, a 429, then the upsert
    assert list(mailchimp.members()) == [listed.customer_email.lower()]
    assert len(mailchimp.calls("tags")) == 1


def test_livechat_failing_for_good_is_dead_lettered_with_every_attempts_error(fast, launch):
    system, lc = launch("3.6", NEVER)
    persistent = [fault for fault in LIVECHAT_FAULTS if fault not in LANDS]
    convs = fault_world(system, lc, persistent, times=ATTEMPTS)
    wait_for(lambda: len(system.dead_letters()) == len(convs), timeout=60, what="every chat's failure dead-lettered")
    system.settle()

    handlers = {"send_event": "rating.react", "tag_thread": "tagging.thread_ended"}
    items = {(item["event"]["chat_id"], item["handler"]): item for item in system.dead_letters()}
    for (fault, call), conv in convs.items():
        item = items[conv.chat_id, handlers[call]]
        assert item["attempts"] == ATTEMPTS
        assert [(e["method"], e["type"]) for e in item["errors"]] == [(call, LIVECHAT_FAULTS[fault][1])] * ATTEMPTS
        attempts = faulted(lc, conv, call)
        assert len(attempts) == ATTEMPTS, (fault, call)
        assert_backed_off(fault, attempts)
        # Nothing landed, nothing else repeated.
        if call == "send_event":
            assert bot_messages(lc, conv) == [] and tag_calls(lc, conv) == {BAD_TAG: 1}, fault
        else:
            assert thread_tags(lc, conv) == [], fault
