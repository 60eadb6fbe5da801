"""Scale-out on one Redis (SPEC §10): two web processes, two Celery workers (distinct hostnames) and two beats,
with Redis as the broker too, or RabbitMQ.

Every delivery is posted to both webs at once, as a retrying sender or a load balancer might; one worker is
SIGKILLed whole in the middle of a tag. Counted where they land, at the fakes: every effect once, every
nudge once, work spread over both workers, and the queued/processed ledger balanced. On RabbitMQ the
second of the two identical posts finds the first one's claim pending and waits for its publish to be
confirmed: it is a duplicate there too.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from chathooks.embedded_redis import EmbeddedRedis
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import wait_for
from tests.integration.beat import start_beat
from tests.integration.conversation import Conversation, Step
from tests.integration.processes import Process, start_web, start_worker
from tests.integration.system import APOLOGY, NUDGE, OPENING, automation_env, metric, mirror, write_rules

pytestmark = pytest.mark.integration

AFTER = 4  # seconds of silence before the nudge
VISIBILITY = 8  # a SIGKILLed worker's unacknowledged tasks go to the other one after this
CHATS = 10  # even ones get an agent's answer, odd ones are nudged
OPENING_TAGS = {"refund", "order-status"}


@pytest.fixture
def cluster(pipeline_env: dict[str, str], tmp_path: Path, processes: list[Process],
            mailchimp: FakeMailchimp) -> Iterator[tuple[list[str], list[Process], FakeLiveChat, dict[str, str]]]:
    lc = FakeLiveChat("3.6").start()
    # Its own Redis: kombu's unacked hash is global, and a short visibility timeout would restore anyone's.
    with EmbeddedRedis(tmp_path / "redis") as server:
        env = automation_env(pipeline_env, lc, mailchimp, write_rules(tmp_path / "rules.json", AFTER)) | {
            "REDIS_URL": server.url, "CHATHOOKS_VISIBILITY_TIMEOUT": str(VISIBILITY),
            "CHATHOOKS_TASK_TIME_LIMIT": "5", "CHATHOOKS_RETRY_BASE": "0.4", "CHATHOOKS_RETRY_CAP": "2"}
        try:
            urls = []
            for name in ("web-a", "web-b"):
                (tmp_path / name).mkdir()
                web, url = start_web(env, tmp_path / name)
                processes.append(web)
                urls.append(url)
            workers = [start_worker(env, tmp_path, name=name) for name in ("worker-a", "worker-b")]
            processes.extend(workers)
            processes.extend(start_beat(env, tmp_path, name=name) for name in ("beat-a", "beat-b"))
            yield urls, workers, lc, env
        finally:
            lc.stop()


def post_to_both(urls: list[str], lc: FakeLiveChat, conv: Conversation, step: Step) -> list[str]:
    """LiveChat's state changes, then the same webhook reaches both webs at once; their answers."""
    if conv.created_at is not None:
        if conv.chat_id not in lc.chats:
            lc.seed_chat(conv.chat())
        mirror(lc, conv, step)
    with ThreadPoolExecutor(len(urls)) as pool:
        answers = list(pool.map(lambda url: requests.post(f"{url}/webhooks/livechat", json=step.body, timeout=10),
                                urls))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return sorted(a.json()["status"] for a in answers)


def tag_calls(lc: FakeLiveChat, conv: Conversation) -> Counter[str]:
    return Counter(r.json["tag"] for r in lc.calls("tag_thread") if r.json["chat_id"] == conv.chat_id)


def nudges(lc: FakeLiveChat, conv: Conversation) -> int:
    with lc.lock:
        return sum(e.get("text") == NUDGE for e in lc.chats[conv.chat_id]["thread"]["events"])


def holder(workers: list[Process], client: tuple[str, int]) -> Process:
    """The worker one of whose pool processes holds the connection a fake recorded a request from."""
    for worker in workers:
        for child in psutil.Process(worker.proc.pid).children():
            if any(c.laddr and c.laddr.port == client[1] for c in child.net_connections("tcp")):
                return worker
    raise AssertionError(f"no worker holds a connection from {client}")


def settled(url: str, queued: float) -> bool:
    return metric(url, "chathooks_deliveries_processed_total", source="livechat") >= queued


@pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)
def test_two_webs_two_workers_two_beats_one_redis_every_effect_once(broker, cluster):
    urls, workers, lc, env = cluster
    convs = [Conversation("3.6") for _ in range(CHATS)]
    answered = {c.chat_id for c in convs[::2]}

    def expected(conv: Conversation) -> set[str]:
        return OPENING_TAGS | ({"canned-apology"} if conv.chat_id in answered else set())  # the agent's apology

    queued = 0
    for conv in convs:
        first = post_to_both(urls, lc, conv, conv.routing_status("accepting_chats"))
        assert first in (["duplicate", "queued"], ["duplicate", "duplicate"])  # the same bot's status
        queued += first.count("queued")
        assert post_to_both(urls, lc, conv, conv.start(time.time(), OPENING)) == ["duplicate", "queued"]
        queued += 1
    for conv in convs[::2]:  # answered before the silence ends: never nudged
        for step in (conv.agent_joins(time.time()), conv.agent_says(APOLOGY, time.time())):
            assert post_to_both(urls, lc, conv, step) == ["duplicate", "queued"]
            queued += 1
    for conv in convs[1::2]:
        wait_for(lambda: nudges(lc, conv) == 1, timeout=AFTER + 20, what="a silent chat's nudge")

    # One chat's first tag is applied at LiveChat but its answer never comes: that worker is killed whole.
    held = convs[0]
    lc.fail_next("tag_thread", delay=60, process=True, chat_id=held.chat_id)
    for conv in convs:
        assert post_to_both(urls, lc, conv, conv.deactivated()) == ["duplicate", "queued"]
        queued += 1
    [first_tag] = wait_for(lambda: [r for r in lc.calls("tag_thread") if r.json["chat_id"] == held.chat_id],
                           timeout=20, what="the held chat's first tag sent")
    killed = holder(workers, first_tag.client)
    killed.signal(signal.SIGKILL)
    killed.proc.wait(10)
    survivor = next(w for w in workers if w is not killed)

    wait_for(lambda: all(set(lc.chat(c.chat_id)["thread"].get("tags", [])) == expected(c) for c in convs),
             timeout=VISIBILITY + 30, what="every chat tagged, the killed worker's task restored to the other")
    wait_for(lambda: settled(urls[0], queued), timeout=30, what="the ledger balanced")
    time.sleep(2)  # anything doubled would land now

    for conv in convs:
        assert tag_calls(lc, conv) == Counter(expected(conv)), conv.chat_id  # once each, the held one too
    assert [nudges(lc, c) for c in convs] == [0, 1] * (CHATS // 2)
    for url in urls:
        assert metric(url, "chathooks_webhooks_queued_total", source="livechat") == queued
        assert metric(url, "chathooks_deliveries_processed_total", source="livechat") == queued
        assert metric(url, "chathooks_dead_letters") == 0
    ran = {w.name: w.log().count("chathooks.process_delivery[") for w in workers}
    assert all(ran.values()), f"work spread over both workers: {ran}"
    assert survivor.proc.poll() is None
