"""Flower on real processes: workers start with task events off, and Flower turns them on while it runs."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from chathooks.embedded_redis import free_port
from tests.helpers import wait_for
from tests.integration.processes import Process
from tests.integration.system import message

pytestmark = pytest.mark.integration

AUTH = ("ops", "flower-" + uuid.uuid4().hex[:8])


def test_flower_sees_the_tasks_of_workers_started_without_task_events(web, worker, pipeline_env, processes,
                                                                     tmp_path: Path):
    assert "-E" not in worker.proc.args  # the Procfile's flags
    port = free_port()
    env = {**pipeline_env, "FLOWER_PORT": str(port), "FLOWER_ADDRESS": "127.0.0.1",
           "FLOWER_BASIC_AUTH": ":".join(AUTH), "FLOWER_DB": str(tmp_path / "flower.db")}
    flower = Process("flower", [str(Path(sys.executable).with_name("chathooks")), "flower"], env, tmp_path)
    processes.append(flower)
    url = f"http://127.0.0.1:{port}"

    def tasks() -> dict[str, dict]:
        try:
            return requests.get(f"{url}/api/tasks", auth=AUTH, timeout=2).json()
        except (requests.RequestException, ValueError):
            return {}

    def up() -> bool:
        assert flower.alive(), flower.log()[-2000:]
        try:
            return requests.get(f"{url}/healthcheck", auth=AUTH, timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(up, what="Flower up", timeout=30, interval=0.2)
    # Flower enables events on every worker every 5 s: a delivery after that shows in its task list.
    chat, n = 900, 0

    def delivered_and_seen() -> bool:
        nonlocal n
        n += 1
        requests.post(f"{web}/webhooks/livechat", json=message(chat, n), timeout=5).raise_for_status()
        time.sleep(0.5)
        return any(t.get("name") == "chathooks.process_delivery" for t in tasks().values())

    wait_for(delivered_and_seen, what="a delivery in Flower's task list", timeout=30)
