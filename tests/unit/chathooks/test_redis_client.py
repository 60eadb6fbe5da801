"""Redis clients: plain URLs, sentinels, and scripts whose writes a replica confirms in the same round trip."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.sentinel import SentinelManagedConnection

from chathooks.keys import Keys
from chathooks.platforms.livechat.adapter import load_envelope, to_delivery
from chathooks.queue import RedisEnqueuer
from chathooks.redis_client import connect, is_sentinel, replicated
from chathooks.settings import ConfigError, Settings
from tests.conftest import make_settings
from tests.helpers import fixture
from workers.once import Once

REAL = "redis://127.0.0.1:6379/15"  # WAIT needs a real server: fakeredis does not replicate


@pytest.fixture
def real() -> redis.Redis:
    client = redis.Redis.from_url(REAL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"rc:{uuid.uuid4().hex[:8]}:"
    client.prefix = prefix  # type: ignore[attr-defined]
    yield client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_sentinel_urls_are_accepted_with_their_master_and_a_replica_wait():
    url = "sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380;sentinel://127.0.0.1:26381/2"
    settings = Settings.from_env({"REDIS_URL": url, "REDIS_SENTINEL_MASTER": "main"})
    assert (settings.redis_url, settings.broker_url, settings.redis_sentinel_master) == (url, url, "main")
    assert settings.broker_is_redis and settings.broker_shares_state_redis and settings.redis_wait_ms == 100
    assert Settings.from_env({"REDIS_URL": url, "CHATHOOKS_REDIS_WAIT_MS": "0"}).redis_wait_ms == 0
    assert Settings.from_env({}).redis_wait_ms == 0  # no replicas to wait for


@pytest.mark.parametrize("url", ["sentinel://a", "sentinel://a:x", "sentinel://a:1;redis://b:2", "sentinel://:1"])
def test_a_malformed_list_of_sentinels_stops_the_process_naming_the_variable(url):
    with pytest.raises(ConfigError, match="REDIS_URL is not a valid list of sentinels"):
        Settings.from_env({"REDIS_URL": url})


def test_a_sentinel_url_gives_a_client_of_the_master_the_sentinels_name():
    client = connect("sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380/3", 1.0, "main")
    pool = client.connection_pool
    assert pool.connection_class is SentinelManagedConnection and pool.service_name == "main"
    assert pool.connection_kwargs["db"] == 3
    assert is_sentinel("sentinel://h:1") and not is_sentinel("redis://h:1")


def test_a_replicated_script_returns_its_result_and_the_replicas_that_confirmed(real):
    # A script the server has never seen (as on a master just promoted): it is loaded on the way.
    script = real.register_script(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCR', KEYS[1])")
    assert replicated(real, script, [f"{real.prefix}n"], [], 10) == (1, 0)  # no replica here
    assert replicated(real, script, [f"{real.prefix}n"], [], 10) == (2, 0)


def test_an_enqueue_no_replica_confirmed_is_queued_and_counted(real):
    settings = make_settings(CHATHOOKS_KEY_PREFIX=real.prefix, CHATHOOKS_QUEUE=f"{real.prefix}events")
    delivery = to_delivery(load_envelope(fixture("incoming_event")), settings)
    keys = Keys(settings.key_prefix)
    queue = RedisEnqueuer(real, keys, settings.queue, wait_ms=10)
    assert queue.enqueue(delivery) is True and queue.enqueue(delivery) is False
    assert real.llen(settings.queue) == 1
    assert real.hget(keys.metrics, "unreplicated:livechat") == b"1"  # the duplicate queued nothing


def test_a_once_guard_waits_for_a_replica_on_its_claim_and_its_done_mark(real, monkeypatch):
    sent: list[str] = []
    original = redis.client.Pipeline.execute_command

    def watched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(args[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute_command", watched)
    once = Once(real, real.prefix, lease_seconds=5, wait_ms=10)
    assert once.run("tag:T1:refund", lambda: "tagged") == (True, "tagged")
    # The claim (loaded on the way, as on a new master) and the done mark each go with a WAIT.
    assert sent[-3:] == ["SET", "DEL", "WAIT"]
    assert all(sent[i + 1] == "WAIT" for i, command in enumerate(sent) if command == "EVALSHA")
    assert once.run("tag:T1:refund", lambda: "again") == (False, None)
