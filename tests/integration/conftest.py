"""Integration fixtures: the real Redis (REDIS_URL, else an embedded one) and per-test isolation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from chathooks.embedded_redis import EmbeddedRedis
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.fakes.tcp_proxy import TcpProxy
from tests.helpers import SECRET
from tests.integration import rabbitmq
from tests.integration.conversation import BOT_ID
from tests.integration.processes import Process, start_web, start_worker
from tests.integration.system import System, automation_env, launched, write_rules

TEST_DB = os.environ.get("CHATHOOKS_TEST_REDIS_DB", "13")


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Redis the tests run against: REDIS_URL's server (db 13), else an embedded server."""
    if os.environ.get("REDIS_URL"):
        yield _with_db(os.environ["REDIS_URL"], TEST_DB)
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        print(f"\nREDIS_URL unset: integration tests use an embedded Redis at {server.url}")
        yield server.url


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    for proc in Process.started:
        proc.stop()


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[TcpProxy | None]:
    """The Celery broker: the state Redis (``"redis"``, the default), or the local RabbitMQ (``"amqp"``, by
    indirect parametrisation) reached through a proxy the test may cut."""
    if getattr(request, "param", "redis") == "redis":
        yield None
        return
    if not rabbitmq.reachable():
        pytest.skip(f"RabbitMQ not reachable at {rabbitmq.AMQP_URL}")
    proxy = rabbitmq.start_proxy()
    yield proxy
    proxy.stop()


@pytest.fixture
def pipeline_env(redis_url: str, broker: TcpProxy | None) -> Iterator[dict[str, str]]:
    """Environment for one test's processes, under its own key prefix and queue; cleaned up after."""
    prefix = f"it:{uuid.uuid4().hex[:8]}:"
    env = {
        "REDIS_URL": redis_url,
        "CHATHOOKS_KEY_PREFIX": prefix,
        "CHATHOOKS_QUEUE": f"{prefix}events",
        "LIVECHAT_WEBHOOK_SECRETS": SECRET,
    }
    if broker is not None:
        env["CELERY_BROKER_URL"] = rabbitmq.proxied(broker)
    yield env
    if broker is not None:
        rabbitmq.delete([env["CHATHOOKS_QUEUE"]])
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    for key in client.scan_iter(f"_kombu.binding*{prefix}*"):
        client.delete(key)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Process]]:
    """Started processes are stopped at teardown; their logs stay in the test's tmp_path."""
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()


@pytest.fixture
def web(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path) -> str:
    proc, url = start_web(pipeline_env, tmp_path)
    processes.append(proc)
    return url


@pytest.fixture
def worker(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path) -> Process:
    proc = start_worker(pipeline_env, tmp_path)
    processes.append(proc)
    return proc


# --- the world: fakes, rules, processes ------------------------------------------------------


@pytest.fixture
def mailchimp() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as fake:
        yield fake


@pytest.fixture
def launch(request: pytest.FixtureRequest, pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
           mailchimp: FakeMailchimp) -> Iterator[Callable[[str, int], tuple[System, FakeLiveChat]]]:
    """``launch(version, after_seconds)``: FakeLiveChat, a rules file, and the pipeline's processes.

    Everything started is stopped at teardown; the processes' logs are printed if the test failed.
    """
    with launched(request) as (systems, fakes):
        def launch(version: str, after_seconds: int) -> tuple[System, FakeLiveChat]:
            lc = FakeLiveChat(api_version=version).start()
            fakes.append(lc)
            assert lc.bot_id == BOT_ID, "the fixtures' bot is FakeLiveChat's bot"
            rules = write_rules(tmp_path / "rules.json", after_seconds)
            system = System(automation_env(pipeline_env, lc, mailchimp, rules), tmp_path, processes)
            systems.append(system)
            return system, lc

        yield launch
