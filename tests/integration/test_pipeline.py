"""End to end: real gunicorn ingress, real Celery worker, real Redis."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from chathooks.embedded_redis import EmbeddedRedis
from tests.helpers import wait_for
from tests.integration.processes import start_web, start_worker
from tests.integration.system import message, metric, recorded

pytestmark = pytest.mark.integration


def test_n_webhooks_in_n_events_recorded_duplicates_once(web, worker, pipeline_env, redis_url):
    client = redis.Redis.from_url(redis_url)
    prefix = pipeline_env["CHATHOOKS_KEY_PREFIX"]
    bodies = [message(chat, n) for chat in range(8) for n in range(15)]
    with requests.Session() as http:
        statuses = [http.post(f"{web}/webhooks/livechat", json=b, timeout=5).json()["status"] for b in bodies]
        retries = [http.post(f"{web}/webhooks/livechat", json=b, timeout=5).json()["status"] for b in bodies[::4]]
    assert statuses == ["queued"] * len(bodies)
    assert retries == ["duplicate"] * len(bodies[::4])

    wait_for(lambda: recorded(client, prefix) == len(bodies), what="every event recorded")
    time.sleep(0.5)  # nothing more may arrive
    assert recorded(client, prefix) == len(bodies)
    assert client.llen(pipeline_env["CHATHOOKS_QUEUE"]) == 0
    # Counted by two gunicorn workers into one shared set of figures.
    assert metric(web, "chathooks_webhooks_queued_total", source="livechat") == len(bodies)
    assert metric(web, "chathooks_webhooks_duplicates_total", source="livechat") == len(bodies[::4])
    # Every queued delivery was processed once by the workers: the ledger balances.
    assert metric(web, "chathooks_deliveries_processed_total", source="livechat") == len(bodies)


def test_concurrent_retries_of_one_delivery_queue_it_once(web, worker, pipeline_env, redis_url):
    body = message(1, 1)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: requests.post(f"{web}/webhooks/livechat", json=body, timeout=5).json(),
                                range(16)))
    assert sorted(a["status"] for a in answers).count("queued") == 1
    assert len({a["id"] for a in answers}) == 1
    client = redis.Redis.from_url(redis_url)
    prefix = pipeline_env["CHATHOOKS_KEY_PREFIX"]
    wait_for(lambda: recorded(client, prefix) == 1, what="the one event recorded")


def test_redis_down_is_503_then_recovers_without_restarts(tmp_path, pipeline_env, processes):
    with EmbeddedRedis(tmp_path / "redis") as server:
        env = {**pipeline_env, "REDIS_URL": server.url}
        web, url = start_web(env, tmp_path)
        processes.append(web)
        processes.append(start_worker(env, tmp_path))
        client = redis.Redis.from_url(server.url)
        prefix = env["CHATHOOKS_KEY_PREFIX"]
        assert requests.post(f"{url}/webhooks/livechat", json=message(1, 1), timeout=5).json()["status"] == "queued"
        wait_for(lambda: recorded(client, prefix) == 1, what="first event recorded")

        server.kill()
        started = time.monotonic()
        down = requests.post(f"{url}/webhooks/livechat", json=message(1, 2), timeout=10)
        assert down.status_code == 503
        assert time.monotonic() - started < 5, "an outage must be answered well inside LiveChat's 10 s"
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 503

        server.start()
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, what="ready again")
        again = requests.post(f"{url}/webhooks/livechat", json=message(1, 2), timeout=10)
        assert again.json()["status"] == "queued", "the 503'd delivery is not mistaken for a duplicate"
        wait_for(lambda: recorded(client, prefix) == 2, timeout=40, what="worker to reconnect and handle it")


def test_queued_work_survives_a_redis_restart(tmp_path, pipeline_env, processes):
    with EmbeddedRedis(tmp_path / "redis") as server:
        env = {**pipeline_env, "REDIS_URL": server.url}
        web, url = start_web(env, tmp_path)
        processes.append(web)
        bodies = [message(2, n) for n in range(25)]
        for b in bodies:
            assert requests.post(f"{url}/webhooks/livechat", json=b, timeout=5).json()["status"] == "queued"
        time.sleep(1.2)  # appendfsync everysec
        server.stop()
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.llen(env["CHATHOOKS_QUEUE"]) == len(bodies)
        processes.append(start_worker(env, tmp_path))
        wait_for(lambda: recorded(client, env["CHATHOOKS_KEY_PREFIX"]) == len(bodies), what="all handled")
