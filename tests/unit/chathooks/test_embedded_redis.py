import socket

import pytest
import redis

from chathooks.embedded_redis import EmbeddedRedis, EmbeddedRedisError, port_open


def _client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=2)


def test_starts_answers_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    try:
        assert server.running
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert _client(server).ping()
    finally:
        server.stop()
    assert not server.running
    assert not port_open(server.port)


def test_port_zero_picks_a_free_port_and_explicit_port_is_used(tmp_path):
    with EmbeddedRedis(tmp_path / "a") as first:
        assert first.port > 0
        with EmbeddedRedis(tmp_path / "b", port=_free_port()) as second:
            assert second.port != first.port
            assert _client(second).ping()


def test_loopback_only_with_aof_and_no_eviction(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        config = _client(server).config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert config["protected-mode"] == "yes"
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["save"] == ""
    assert config["maxmemory-policy"] == "noeviction"
    assert (tmp_path / "redis.log").exists()


def test_queued_data_survives_restart(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        port = server.port
        _client(server).rpush("queue", "job-1", "job-2")
        server.restart()
        assert server.port == port
        assert _client(server).lrange("queue", 0, -1) == [b"job-1", b"job-2"]


def test_data_survives_a_new_instance_on_the_same_dir(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        _client(server).set("k", "v")
    with EmbeddedRedis(tmp_path) as server:
        assert _client(server).get("k") == b"v"


def test_kill_stops_without_shutdown(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    server.kill()
    assert not server.running
    assert not port_open(server.port)
    server.start()  # same dir and port still usable afterwards
    try:
        assert _client(server).ping()
    finally:
        server.stop()


def test_port_in_use_fails_clearly_with_log_tail(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        server = EmbeddedRedis(tmp_path, port=blocker.getsockname()[1], startup_timeout=5)
        with pytest.raises(EmbeddedRedisError, match="redis.log"):
            server.start()
    assert not server.running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
