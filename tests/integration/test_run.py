"""`chathooks run`: the embedded Redis keeps queued work across a stop and a restart."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import redis
import requests

from chathooks.embedded_redis import free_port
from tests.helpers import fixture, wait_for
from tests.integration.processes import Process
from tests.integration.system import events_of

pytestmark = pytest.mark.integration


def start_run(tmp_path: Path, procfile: str, env: dict[str, str], name: str) -> Process:
    (tmp_path / "Procfile").write_text(procfile)
    return Process(name, [sys.executable, "-m", "cli", "run"], env, tmp_path, cwd=tmp_path)


def stop(proc: Process) -> int:
    proc.proc.send_signal(signal.SIGINT)
    return proc.proc.wait(30)


def test_queued_work_survives_stop_and_restart(tmp_path, pipeline_env, processes):
    env = {k: v for k, v in pipeline_env.items() if k not in ("REDIS_URL", "LIVECHAT_WEBHOOK_SECRETS")}
    env.update(PORT=str(free_port()), CHATHOOKS_REDIS_PORT=str(free_port()), REDIS_URL="")
    web = f"web: {sys.executable} -m gunicorn --bind 127.0.0.1:$PORT 'app:create_app()'\n"
    worker = f"worker: {sys.executable} -m celery -A workers worker --concurrency=1 --without-mingle\n"

    first = start_run(tmp_path, web, env, "run-1")
    processes.append(first)
    url = f"http://127.0.0.1:{env['PORT']}"
    wait_for(lambda: _up(url, first), timeout=40, what="chathooks run to serve")
    secret = (tmp_path / "var" / "dev-webhook-secret").read_text().strip()
    for n in range(5):
        body = fixture("incoming_event")
        body["secret_key"] = secret
        body["payload"]["event"]["id"] = f"RESTART_{n}"
        assert requests.post(f"{url}/webhooks/livechat", json=body, timeout=5).json()["status"] == "queued"
    assert stop(first) == 0
    assert list((tmp_path / "var" / "redis").glob("appendonly*")), "AOF persistence under ./var/redis"

    second = start_run(tmp_path, web + worker, env, "run-2")
    processes.append(second)
    client = redis.Redis(port=int(env["CHATHOOKS_REDIS_PORT"]))
    key = f"{env['CHATHOOKS_KEY_PREFIX']}timeline:RX8QK2MZ1A"
    wait_for(lambda: _alive(second) and _handled(client, key) == 5, timeout=60,
             what="queued work handled after restart")
    assert {e["key"].rsplit(":", 1)[1] for e in events_of(client, key)} == {f"RESTART_{n}" for n in range(5)}
    assert stop(second) == 0


def _handled(client: redis.Redis, key: str) -> int:
    """The events recorded so far; none while the restarted run's Redis is not listening yet."""
    try:
        return len(events_of(client, key))
    except redis.ConnectionError:
        return 0


def _alive(proc: Process) -> bool:
    assert proc.alive(), proc.log()
    return True


def _up(url: str, proc: Process) -> bool:
    _alive(proc)
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.ConnectionError:
        return False
