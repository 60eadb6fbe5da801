"""Redis Sentinel for real (SPEC §10): a master, a replica and three sentinels on loopback, webhooks flowing,
the master SIGKILLed. The web, worker and beat follow the new master without a restart; the sender sees 503s
only around the switch and retries, as LiveChat does; every delivery answered 200 is acted on, each effect once.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from chathooks.embedded_redis import EmbeddedRedis, free_port, redis_server_executable
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import wait_for
from tests.integration.beat import start_beat
from tests.integration.conversation import Conversation, Step
from tests.integration.processes import start_web, start_worker
from tests.integration.system import OPENING, automation_env, mirror, write_rules

pytestmark = pytest.mark.integration

MASTER = "chathooks-test"
CHATS = 24
OPENING_TAGS = {"refund", "order-status"}


class Sentinel:
    """``redis-server <conf> --sentinel`` on a free loopback port, watching ``MASTER``."""

    def __init__(self, data_dir: Path, master_port: int) -> None:
        data_dir.mkdir(parents=True)
        self.port = free_port()
        conf = data_dir / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {data_dir}\n"
                        f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
                        f"sentinel down-after-milliseconds {MASTER} 1000\n"
                        f"sentinel failover-timeout {MASTER} 5000\n")
        with open(data_dir / "sentinel.log", "ab") as log:
            self.proc = subprocess.Popen([str(redis_server_executable()), str(conf), "--sentinel"], cwd=data_dir,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.client = redis.Redis(port=self.port, socket_timeout=1)

    def replicas(self) -> int:
        try:
            return len(self.client.sentinel_slaves(MASTER))
        except redis.RedisError:
            return 0

    def master_port(self) -> int | None:
        try:
            # The command itself: redis-py 6.4's sentinel_get_master_addr_by_name fails on a plain client.
            return int(self.client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", MASTER)[1])
        except (redis.RedisError, TypeError):
            return None

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis, list[Sentinel]]]:
    master = EmbeddedRedis(tmp_path / "master").start()
    replica = EmbeddedRedis(tmp_path / "replica", extra_args=("--replicaof", "127.0.0.1", str(master.port))).start()
    sentinels = []
    try:
        wait_for(lambda: redis.Redis(port=replica.port).info("replication")["master_link_status"] == "up",
                 what="the replica in sync")
        sentinels = [Sentinel(tmp_path / f"sentinel-{n}", master.port) for n in range(3)]
        wait_for(lambda: all(s.replicas() == 1 for s in sentinels), what="every sentinel to know the replica")
        yield master, replica, sentinels
    finally:
        for s in sentinels:
            s.stop()
        replica.kill()
        master.kill()


class Sender:
    """Posts each delivery until it is answered 200, as LiveChat retries (here every 0.2 s); remembers
    the 503s it met, and when."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.unavailable: list[float] = []
        self.http = requests.Session()

    def deliver(self, body: dict) -> str:  # type: ignore[type-arg]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                answer = self.http.post(f"{self.url}/webhooks/livechat", json=body, timeout=5)
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code == 200:
                return answer.json()["status"]
            assert answer is None or answer.status_code == 503, answer.text
            self.unavailable.append(time.time())
            time.sleep(0.2)
        raise AssertionError("a delivery was never accepted")


def test_a_master_killed_mid_stream_fails_over_and_loses_nothing(topology, pipeline_env, tmp_path, processes,
                                                                  mailchimp: FakeMailchimp):
    master, replica, sentinels = topology
    url = ";".join(f"sentinel://127.0.0.1:{s.port}" for s in sentinels) + "/0"
    lc = FakeLiveChat("3.6").start()
    try:
        env = automation_env(pipeline_env, lc, mailchimp, write_rules(tmp_path / "rules.json", 600)) | {
            "REDIS_URL": url, "REDIS_SENTINEL_MASTER": MASTER, "CHATHOOKS_VISIBILITY_TIMEOUT": "8",
            "CHATHOOKS_TASK_TIME_LIMIT": "5", "CHATHOOKS_RETRY_BASE": "0.4", "CHATHOOKS_RETRY_CAP": "2"}
        web, web_url = start_web(env, tmp_path)
        processes.append(web)
        processes.append(start_worker(env, tmp_path))
        processes.append(start_beat(env, tmp_path))
        sender = Sender(web_url)
        convs = [Conversation("3.6") for _ in range(CHATS)]
        steps: list[tuple[Conversation, Step]] = []
        for conv in convs:
            steps.append((conv, conv.start(time.time(), OPENING)))
            steps.append((conv, conv.deactivated()))
        answers: list[str] = []
        killed_at: list[float] = []
        unreplicated_before: list[object] = []
        metrics = f"{env['CHATHOOKS_KEY_PREFIX']}metrics"

        def send() -> None:
            for n, (conv, step) in enumerate(steps):
                if conv.chat_id not in lc.chats:
                    lc.seed_chat(conv.chat())
                mirror(lc, conv, step)
                answers.append(sender.deliver(step.body))
                if n == len(steps) // 3:
                    unreplicated_before.append(redis.Redis(port=master.port).hget(metrics, "unreplicated:livechat"))
                    master.kill()  # SIGKILL: no chance to hand anything over
                    killed_at.append(time.time())
                time.sleep(0.05)

        thread = threading.Thread(target=send)
        thread.start()
        thread.join(120)
        assert not thread.is_alive()
        wait_for(lambda: all(s.master_port() == replica.port for s in sentinels), what="the replica promoted")

        # Every delivery was answered 200 in the end, each once queued (a retry of a timed-out one may be
        # answered duplicate), and every chat is tagged exactly once per tag: nothing lost, nothing twice.
        assert len(answers) == len(steps) and set(answers) <= {"queued", "duplicate"}
        wait_for(lambda: all(set(lc.chat(c.chat_id)["thread"].get("tags", [])) == OPENING_TAGS for c in convs),
                 timeout=60, what="every chat tagged after the failover")
        time.sleep(2)
        tagged = Counter((r.json["chat_id"], r.json["tag"]) for r in lc.calls("tag_thread"))
        assert set(tagged.values()) == {1}, {k: v for k, v in tagged.items() if v > 1}
        # 503s only around the switch (sentinels take about a second to agree, then the clients follow).
        assert all(killed_at[0] - 1 <= t <= killed_at[0] + 15 for t in sender.unavailable), sender.unavailable
        # Before the kill a replica confirmed every enqueue; after it none is left (the old master is gone), and
        # each delivery queued since is counted as unreplicated: what a second failure could lose is visible.
        assert unreplicated_before == [None]
        after_kill = len(steps) - (len(steps) // 3 + 1)
        assert int(redis.Redis(port=replica.port).hget(metrics, "unreplicated:livechat")) == after_kill
    finally:
        lc.stop()
