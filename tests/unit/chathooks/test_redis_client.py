"""Redis clients: plain URLs, sentinels, and scripts whose writes a replica confirms in the same round trip."""

from __future__ import annotations

import select
import uuid

import pytest
import redis
from redis._parsers import _RESP2Parser
from redis.sentinel import SentinelManagedConnection

from chathooks import redis_client
from chathooks.keys import Keys
from chathooks.platforms.livechat.adapter import load_envelope, to_delivery
from chathooks.queue import RedisEnqueuer
from chathooks.redis_client import PackedScript, PipelinedScript, ReadyPool, connect, execute, is_sentinel
from chathooks.settings import ConfigError, Settings
from tests.conftest import make_settings
from tests.helpers import REAL_REDIS_URL, fixture
from workers.once import Once



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


def test_a_replicated_script_returns_its_result_and_the_replicas_that_confirmed(real_redis):
    # A script the server has never seen (as on a master just promoted): it is loaded on the way.
    script = PackedScript(real_redis, f"-- {uuid.uuid4().hex}\nreturn redis.call('INCR', KEYS[1])")
    assert script([f"{real_redis.prefix}n"], [], 10) == (1, 0)  # no replica here
    assert script([f"{real_redis.prefix}n"], [], 10) == (2, 0)
    assert script([f"{real_redis.prefix}n"], []) == (3, None)  # not asked


def test_a_packed_script_passes_its_arguments_as_redis_py_would(real_redis):
    script = PackedScript(real_redis, "return {KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]}")
    blob = bytes(range(256)) * 8
    assert script([f"{real_redis.prefix}ü"], [3600, 1.25, "é\r\n", blob]) == (
        [f"{real_redis.prefix}ü".encode(), b"3600", b"1.25", "é\r\n".encode(), blob], None)


def test_a_packed_script_error_is_raised_and_leaves_the_connection_usable(real_redis):
    script = PackedScript(real_redis, "return redis.error_reply('no such thing')")
    for wait_ms in (0, 10):  # with WAIT, its reply after the error is read too
        with pytest.raises(redis.ResponseError, match="no such thing"):
            script([], [], wait_ms)
        assert real_redis.ping()


def test_a_packed_script_retries_a_dropped_connection_once(real_redis):
    script = PackedScript(real_redis, "return 7")
    assert script([], []) == (7, None)
    pool = real_redis.connection_pool
    connection = pool.get_connection()
    connection.send_command("CLIENT", "ID")
    client_id = connection.read_response()
    pool.release(connection)
    redis.Redis.from_url(REAL_REDIS_URL).client_kill_filter(_id=client_id)  # the server drops it under the client
    assert script([], []) == (7, None)


def test_a_packed_script_answers_a_timeout_without_retrying_it(real_redis):
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_timeout=0.2)
    script = PackedScript(client, "local t = redis.call('TIME') while true do local n = redis.call('TIME') "
                                  "if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 400000 then return 1 end end")
    with pytest.raises(redis.TimeoutError):
        script([], [])
    assert client.ping()  # the connection the late reply would arrive on was dropped, not reused


def test_an_enqueue_no_replica_confirmed_is_queued_and_counted(real_redis):
    settings = make_settings(CHATHOOKS_KEY_PREFIX=real_redis.prefix, CHATHOOKS_QUEUE=f"{real_redis.prefix}events")
    delivery = to_delivery(load_envelope(fixture("incoming_event")), settings)
    keys = Keys(settings.key_prefix)
    queue = RedisEnqueuer(real_redis, keys, settings.queue, wait_ms=10)
    assert queue.enqueue(delivery) is True and queue.enqueue(delivery) is False
    assert real_redis.llen(settings.queue) == 1
    assert real_redis.hget(keys.metrics, "unreplicated:livechat") == b"1"  # the duplicate queued nothing


def test_reads_go_in_the_enqueue_s_round_trip_before_its_wait_and_a_failed_one_is_told(real_redis):
    settings = make_settings(CHATHOOKS_KEY_PREFIX=real_redis.prefix, CHATHOOKS_QUEUE=f"{real_redis.prefix}events")
    delivery = to_delivery(load_envelope(fixture("incoming_event")), settings)
    keys = Keys(settings.key_prefix)
    queue = RedisEnqueuer(real_redis, keys, settings.queue, wait_ms=10)
    real_redis.hset(f"{real_redis.prefix}h", "a", "1")
    assert queue.enqueue_after([("HGETALL", f"{real_redis.prefix}h")], delivery) == ([[b"a", b"1"]], True)
    assert real_redis.hget(keys.metrics, "unreplicated:livechat") == b"1"  # WAIT's reply read after the script's
    real_redis.set(f"{real_redis.prefix}text", "x")
    (failed,), queued = queue.enqueue_after([("HGETALL", f"{real_redis.prefix}text")], delivery)
    assert isinstance(failed, redis.ResponseError) and queued is False and real_redis.llen(settings.queue) == 1


def test_reads_are_tried_once_more_on_a_dropped_connection(real_redis, monkeypatch):
    real_redis.set(f"{real_redis.prefix}v", "1")
    calls: list[int] = []
    exchange = redis_client.exchange

    def dropped_once(client, packet, count):  # type: ignore[no-untyped-def]
        calls.append(count)
        if len(calls) == 1:
            raise redis.ConnectionError("reset by peer")
        return exchange(client, packet, count)

    monkeypatch.setattr(redis_client, "exchange", dropped_once)
    assert redis_client.read(real_redis, [("GET", f"{real_redis.prefix}v")]) == [b"1"] and calls == [1, 1]


def test_a_once_guard_waits_for_a_replica_on_its_claim_and_its_done_mark(real_redis, monkeypatch):
    sent: list[str] = []
    original, send = redis.client.Pipeline.execute_command, redis_client.exchange

    def watched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(args[0]))
        return original(self, *args, **kwargs)

    def packed(client, packet, count):  # type: ignore[no-untyped-def]
        sent.extend(["EVALSHA", "WAIT"] if packet.count(b"WAIT") == 1 else ["EVALSHA"])
        return send(client, packet, count)

    monkeypatch.setattr(redis.client.Pipeline, "execute_command", watched)
    monkeypatch.setattr(redis_client, "exchange", packed)
    deferred: list = []  # with replicas, the done mark is never left for the task's flush
    once = Once(real_redis, real_redis.prefix, lease_seconds=5, wait_ms=10, defer=lambda *write: deferred.append(write))
    assert once.run("tag:T1:refund", lambda: "tagged") == (True, "tagged") and deferred == []
    # The claim (sent again once loaded, as on a new master) and the done mark each go with a WAIT.
    assert sent[-3:] == ["SET", "DEL", "WAIT"] and sent[:-3] in (["EVALSHA", "WAIT"], ["EVALSHA", "WAIT"] * 2)
    assert once.run("tag:T1:refund", lambda: "again") == (False, None)


COUNT = PipelinedScript("return redis.call('INCR', KEYS[1])")


def test_a_pipelined_script_the_server_lost_is_loaded_and_run_once_with_the_rest_run_once(fake_redis):
    for expected in ([1, 1, 2], [3, 2, 4]):
        fake_redis.script_flush()  # a restarted server, or a replica just promoted, knows no script
        with fake_redis.pipeline(transaction=False) as pipe:
            COUNT.queue(pipe, ["counted"], [])
            pipe.incr("plain")
            COUNT.queue(pipe, ["counted"], [])
            assert execute(pipe) == expected  # in order, the scripts' second sending too
    assert (fake_redis.get("counted"), fake_redis.get("plain")) == (b"4", b"2")


def test_a_pipelined_script_s_error_is_raised_after_the_rest_ran(fake_redis):
    failing = PipelinedScript("return redis.error_reply('refused')")
    with fake_redis.pipeline(transaction=False) as pipe:
        failing.queue(pipe, [], [])
        pipe.set("after", "1")
        with pytest.raises(redis.ResponseError, match="refused"):
            execute(pipe)
    assert fake_redis.get("after") == b"1"


def test_a_pipelined_script_is_refused_on_a_transaction_whose_rest_would_commit_without_it(fake_redis):
    with fake_redis.pipeline(transaction=True) as pipe, pytest.raises(ValueError, match="transaction"):
        COUNT.queue(pipe, ["counted"], [])


# --- the pool's readiness check --------------------------------------------------------------------


def _ready_client() -> redis.Redis:
    client = connect(REAL_REDIS_URL, 2.0)
    assert isinstance(client.connection_pool, ReadyPool)
    return client


def test_a_connection_left_with_an_unread_reply_is_not_lent_as_it_is(real_redis):
    client, key = _ready_client(), f"{real_redis.prefix}left"
    client.set(key, "value")
    connection = client.connection_pool.get_connection()
    connection.send_command("GET", key)  # a task cut short before it read the reply
    _arrived(connection)
    client.connection_pool.release(connection)
    assert client.ping() is True and client.get(key) == b"value"


def _arrived(connection) -> None:  # type: ignore[no-untyped-def]
    """Wait until the reply sent for is on the socket (one still on its way is no check's to see)."""
    poller = select.poll()
    poller.register(connection._sock, select.POLLIN)
    assert poller.poll(2000)


def test_a_reply_already_in_the_parser_is_not_read_by_the_next_command(real_redis):
    client, key = _ready_client(), f"{real_redis.prefix}parsed"
    client.set(key, "value")
    connection = client.connection_pool.get_connection()
    connection.send_packed_command(connection.pack_commands([("GET", key), ("GET", key)]))
    assert connection.read_response() == b"value"  # the second reply is in the parser's buffer now
    client.connection_pool.release(connection)
    assert client.exists(key) == 1


def test_a_connection_the_server_closed_is_reconnected_before_use(real_redis):
    client = _ready_client()
    client.ping()
    connection = client.connection_pool.get_connection()
    connection.send_command("CLIENT", "ID")
    own = connection.read_response()
    client.connection_pool.release(connection)
    real_redis.client_kill_filter(_id=own)
    assert client.ping() is True
    assert client.client_id() != own


def test_without_hiredis_a_connection_the_server_closed_is_reconnected_too(real_redis):
    client = redis.Redis(connection_pool=ReadyPool.from_url(REAL_REDIS_URL, parser_class=_RESP2Parser))
    own = client.client_id()
    real_redis.client_kill_filter(_id=own)
    assert client.ping() is True and client.client_id() != own


def test_a_connection_whose_socket_was_closed_under_it_is_reconnected(real_redis):
    client = _ready_client()
    client.ping()
    (connection,) = client.connection_pool._available_connections
    connection._sock.close()
    assert client.ping() is True


def test_a_ready_client_s_close_closes_its_pool(real_redis):
    client = _ready_client()
    client.ping()
    (connection,) = client.connection_pool._available_connections
    client.close()
    assert connection._sock is None


def test_a_healthy_connection_is_lent_again_without_reconnecting(real_redis):
    client = _ready_client()
    first = client.client_id()
    assert [client.client_id() for _ in range(3)] == [first] * 3


def test_a_packed_script_runs_after_reads_sent_in_the_same_write(real_redis):
    p = real_redis.prefix
    script = PackedScript(real_redis, "return redis.call('INCR', KEYS[1])")
    real_redis.hset(f"{p}h", "a", "1")
    reads, result, replicas = script.after([("HGETALL", f"{p}h"), ("GET", f"{p}missing")], [f"{p}n"], [])
    assert (reads, result, replicas) == ([[b"a", b"1"], None], 1, None)  # as the server sent them
    real_redis.set(f"{p}text", "x")
    (failed,), result, _ = script.after([("HGETALL", f"{p}text")], [f"{p}n"], [])
    assert isinstance(failed, redis.ResponseError) and "WRONGTYPE" in str(failed) and result == 2  # told, not raised
    assert script([f"{p}n"], []) == (3, None)  # the connection was read to the end


def test_reads_before_a_script_the_server_lost_are_sent_again_with_it(fake_redis):
    script = PackedScript(fake_redis, "return redis.call('INCR', KEYS[1])")
    fake_redis.set("v", "1")
    fake_redis.script_flush()
    assert script.after([("GET", "v")], ["n"], [])[:2] == ([b"1"], 1)  # loaded, then run once
