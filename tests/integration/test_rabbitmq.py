"""RabbitMQ as the broker, end to end: what can go wrong between the ingress, RabbitMQ and the workers.

Real gunicorn, Celery worker and beat, the local RabbitMQ reached through a TcpProxy each test can cut
or make swallow what is sent, and the state in Redis. The conversations for v3.5 and v3.6 (one by
one, and every delivery three times shuffled) run on RabbitMQ in test_automations; here: an
unroutable publish, the broker away and back, a web process dying between its claim and its publish,
a worker killed mid-task, and a poison message that ends in the dead-letter store.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from kombu import Connection

from tests.fakes.livechat import FakeLiveChat
from tests.helpers import wait_for
from tests.integration import rabbitmq
from tests.integration.conversation import Conversation
from tests.integration.processes import Process, start_web, start_worker
from tests.integration.system import NUDGE, message, metric, sends, start_silence
from tests.integration.test_automations import assert_nudged_in_time
from tests.integration.test_dlq import dlq
from tests.integration.test_faults import (
    FAST,
    NEVER,
    OPENING_TAGS,
    end,
    pool_process_of,
    processed,
    seeded,
    tag_calls,
    thread_tags,
)

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["amqp"], indirect=True)]

BACKLOG = 240
DELIVERY_LIMIT = 2
PUBLISH_TIMEOUT = 1
PENDING_TTL = 5


@pytest.fixture
def amqp_env(pipeline_env: dict[str, str]) -> dict[str, str]:
    pipeline_env.update(FAST, CHATHOOKS_AMQP_DELIVERY_LIMIT=str(DELIVERY_LIMIT),
                        CHATHOOKS_PUBLISH_TIMEOUT=str(PUBLISH_TIMEOUT), CHATHOOKS_PENDING_CLAIM_TTL=str(PENDING_TTL))
    return pipeline_env


@pytest.fixture
def ingress(amqp_env: dict[str, str], processes: list[Process], tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A web process alone (no worker): what it queues stays in RabbitMQ to be counted."""
    proc, url = start_web(amqp_env, tmp_path, workers=1)
    processes.append(proc)
    return url


def post(url: str, body: dict) -> requests.Response:  # type: ignore[type-arg]
    return requests.post(f"{url}/webhooks/livechat", json=body, timeout=10)


def ready(env: dict[str, str]) -> dict[str, int]:
    return rabbitmq.ready(env["CHATHOOKS_QUEUE"])


def claims(env: dict[str, str]) -> list[bytes]:
    """The values of the pipeline's dedupe keys: ``1`` queued, ``processed``, or ``pending:…``."""
    client = redis.Redis.from_url(env["REDIS_URL"])
    return [client.get(key) for key in client.scan_iter(f"{env['CHATHOOKS_KEY_PREFIX']}dedupe:*")]


def pending(env: dict[str, str]) -> int:
    return sum(value.startswith(b"pending:") for value in claims(env) if value)


def test_an_unroutable_publish_is_a_503_and_the_retry_is_queued_once_the_queue_is_back(amqp_env, ingress):
    """The queue deleted under the ingress: RabbitMQ returns the publish (mandatory), the ingress answers
    503 and releases its claim; its next connection declares the queue again and the retry is queued."""
    assert post(ingress, message(1, 1)).status_code == 200  # the queues exist
    with Connection(rabbitmq.AMQP_URL) as conn:
        conn.channel().queue_delete(amqp_env["CHATHOOKS_QUEUE"])
    body = message(1, 2)
    refused = post(ingress, body)
    assert refused.status_code == 503 and "retry later" in refused.json()["error"]
    assert claims(amqp_env) == [b"1"]  # the second's released: its retry is not "duplicate"
    assert post(ingress, body).json()["status"] == "queued"
    assert ready(amqp_env)[amqp_env["CHATHOOKS_QUEUE"]] == 1  # the first went with the deleted queue


def test_a_publish_never_confirmed_is_a_503_and_its_claim_released(amqp_env, broker, ingress):
    """RabbitMQ stops answering (what the ingress sends goes nowhere): no confirm within the publish
    timeout is a 503, the connection is dropped without waiting on it, and the retry is queued."""
    assert post(ingress, message(1, 1)).status_code == 200
    broker.swallow()
    body = message(1, 2)
    refused = post(ingress, body)  # within post's own timeout: nothing waits on the silent connection
    assert refused.status_code == 503
    assert pending(amqp_env) == 0
    broker.restore()
    assert post(ingress, body).json()["status"] == "queued"
    assert ready(amqp_env)[amqp_env["CHATHOOKS_QUEUE"]] == 2


def test_the_broker_away_is_a_503_and_the_pipeline_recovers_without_restarts(amqp_env, broker, launch, mailchimp):
    system, lc = launch("3.6", NEVER)
    before = [seeded(lc) for _ in range(2)]
    for conv in before:
        end(system, lc, conv)
    broker.cut()
    during = seeded(lc)
    refused = requests.post(f"{system.url}/webhooks/livechat", json=during.deactivated().body, timeout=10)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert requests.get(f"{system.url}/readyz", timeout=10).json()["checks"]["broker"] is False
    broker.restore()
    wait_for(lambda: requests.get(f"{system.url}/readyz", timeout=10).status_code == 200, timeout=20,
             what="the ingress ready again")
    end(system, lc, during)  # LiveChat's retry
    after = seeded(lc)
    end(system, lc, after)
    convs = [*before, during, after]
    wait_for(lambda: all(thread_tags(lc, c) == OPENING_TAGS for c in convs), timeout=40,
             what="the worker back on the broker, every chat tagged")
    system.settle()
    for conv in convs:
        assert tag_calls(lc, conv) == {tag: 1 for tag in OPENING_TAGS}
    assert processed(system) == len(convs)
    assert metric(system.url, "chathooks_webhooks_rejected_total", reason="unavailable") == 1


def test_a_web_process_dying_between_claim_and_publish_holds_the_delivery_only_for_the_pending_window(
        amqp_env, broker, processes, tmp_path):
    """The publish swallowed (never received, never confirmed) and the web process SIGKILLed meanwhile: its
    claim stays pending, so LiveChat's retry at another web process is a 503, not "duplicate"; once
    the pending window has passed the retry is queued, exactly once."""
    doomed, doomed_url = start_web(amqp_env, tmp_path, workers=1)
    processes.append(doomed)
    other_proxy = rabbitmq.start_proxy()
    (tmp_path / "other").mkdir()
    try:
        other, other_url = start_web({**amqp_env, "CELERY_BROKER_URL": rabbitmq.proxied(other_proxy)},
                                     tmp_path / "other", workers=1)
        processes.append(other)
        assert post(doomed_url, message(1, 1)).status_code == 200  # connected
        body = message(1, 2)
        broker.swallow()
        threading.Thread(target=lambda: _quietly(post, doomed_url, body), daemon=True).start()
        wait_for(lambda: pending(amqp_env) == 1, timeout=5, what="the claim pending while the publish waits")
        claimed = time.monotonic()
        doomed.signal(signal.SIGKILL)  # its group: gunicorn's master and worker

        retry = post(other_url, body)
        assert retry.status_code == 503, retry.text
        wait_for(lambda: pending(amqp_env) == 0, timeout=PENDING_TTL + 2, what="the pending claim to lapse")
        assert time.monotonic() - claimed >= PENDING_TTL - 1
        assert post(other_url, body).json()["status"] == "queued"
        assert post(other_url, body).json()["status"] == "duplicate"
        assert ready(amqp_env)[amqp_env["CHATHOOKS_QUEUE"]] == 2  # the first delivery and the retried one
    finally:
        other_proxy.stop()


def _quietly(fn, *args):  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except requests.RequestException:
        pass


def test_a_worker_killed_whole_mid_tag_is_redelivered_at_once_and_tags_once(amqp_env, launch, processes, tmp_path):
    """RabbitMQ requeues what a dead connection held: the next worker has it within seconds, no
    visibility timeout to wait out; the rerun finds the tag that landed and applies the other once."""
    system, lc = launch("3.6", NEVER)
    conv = seeded(lc)
    lc.fail_next("tag_thread", delay=NEVER, process=True, chat_id=conv.chat_id)
    end(system, lc, conv)
    wait_for(lambda: tag_calls(lc, conv), timeout=20, what="the first tag sent")
    system.worker.signal(signal.SIGKILL)  # its group: the master and the pool
    system.worker.proc.wait(10)
    killed = time.monotonic()
    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    wait_for(lambda: thread_tags(lc, conv) == OPENING_TAGS, timeout=30, what="the redelivered delivery's tags")
    assert time.monotonic() - killed < 25  # a worker's start, not a visibility timeout (600 s by default)
    system.settle()
    assert tag_calls(lc, conv) == {tag: 1 for tag in OPENING_TAGS}
    assert processed(system) == 1


def test_a_nudge_is_on_time_behind_a_backlog_of_deliveries(amqp_env, launch):
    """The timers' queue has a consumer (and a prefetch) of its own: a tick waits for a free pool process,
    never behind the event queue's backlog (queue_order_strategy, Redis's way, does not exist here)."""
    after = 2
    system, lc = launch("3.6", after)
    convs = [seeded(lc) for _ in range(BACKLOG)]  # each chat's end: get_chat and two tags, some 50 ms of work
    silent = Conversation("3.6")
    deadline = start_silence(system, lc, silent, after)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda conv: end(system, lc, conv), convs))
    assert system.waiting() > BACKLOG / 4, "the backlog was worked off while it was posted: nothing shown"
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 5, what="the nudge")
    nudge = assert_nudged_in_time(lc, deadline)
    wait_for(lambda: all(thread_tags(lc, c) == OPENING_TAGS for c in convs), timeout=60, what="the backlog done")
    assert nudge.time < max(r.time for r in lc.calls("tag_thread")), "the backlog ended before the nudge was due"


def test_a_poison_message_ends_in_the_dead_letter_store_after_the_delivery_limit(amqp_env, launch):
    """Every delivery of one message kills the pool process running it. Past the delivery limit RabbitMQ
    dead-letters it instead of handing it out again; the tick moves it into the dead-letter store,
    where ``chathooks dlq list`` shows it, and a replay (the platform well again) tags the chat once."""
    system, lc = launch("3.6", NEVER)
    conv = seeded(lc)
    # The chat's end reads the thread first (get_chat, before any claim): each delivery hangs there.
    lc.fail_next("get_chat", delay=NEVER, close=True, times=DELIVERY_LIMIT + 1, chat_id=conv.chat_id)
    end(system, lc, conv)
    killed: set[tuple[str, int]] = set()

    def dead_lettered() -> list[dict]:  # type: ignore[type-arg]
        for held in get_chat_calls(lc, conv):
            if held.client not in killed:
                killed.add(held.client)
                pool_process_of(system.worker, held.client).kill()
        return system.dead_letters()

    [item] = wait_for(dead_lettered, timeout=60, what="the poison message in the dead-letter store")
    assert len(killed) == DELIVERY_LIMIT + 1  # the first delivery and DELIVERY_LIMIT more
    assert item["handler"] == "pipeline.dispatch" and item["event"]["chat_id"] == conv.chat_id
    assert item["errors"][-1]["type"] == "poison" and "dead-lettered" in item["errors"][-1]["message"]
    assert thread_tags(lc, conv) == []
    assert sum(ready(amqp_env).values()) == 0  # nothing loops, nothing waits in a dead queue

    listed = dlq(system, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [i["id"] for i in json.loads(listed.stdout)] == [item["id"]]
    replayed = dlq(system, "replay", item["id"])
    assert replayed.returncode == 0, replayed.stderr
    wait_for(lambda: thread_tags(lc, conv) == OPENING_TAGS, timeout=40, what="the replayed work's tags")
    system.settle()
    assert tag_calls(lc, conv) == {tag: 1 for tag in OPENING_TAGS}
    assert system.dead_letters() == []


def get_chat_calls(lc: FakeLiveChat, conv) -> list:  # type: ignore[no-untyped-def, type-arg]
    return [r for r in lc.calls("get_chat") if r.json["chat_id"] == conv.chat_id]
