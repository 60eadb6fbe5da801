"""The local RabbitMQ (127.0.0.1:5672, guest/guest; ``CHATHOOKS_TEST_AMQP_URL`` names another) as a test's
broker: reached through a TcpProxy the test can cut, its queues named after the test's and deleted after."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

from kombu import Connection

from tests.fakes.tcp_proxy import TcpProxy

AMQP_URL = os.environ.get("CHATHOOKS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def reachable() -> bool:
    parts = urlsplit(AMQP_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=1).close()
    except OSError:
        return False
    return True


def proxied(proxy: TcpProxy) -> str:
    """The broker URL through ``proxy``."""
    parts = urlsplit(AMQP_URL)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{proxy.port}"))


def start_proxy() -> TcpProxy:
    parts = urlsplit(AMQP_URL)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()


def queue_names(queue: str) -> tuple[str, ...]:
    """A pipeline's queues on RabbitMQ (chathooks.amqp): events and timers, and where each dead-letters."""
    return queue, f"{queue}.scheduled", f"{queue}.dead", f"{queue}.scheduled.dead"


def ready(queue: str) -> dict[str, int]:
    """Messages waiting (not yet delivered to a worker) in each of the pipeline's queues."""
    with Connection(AMQP_URL, connect_timeout=5) as conn:
        channel = conn.channel()
        return {q: channel.queue_declare(queue=q, passive=True).message_count for q in queue_names(queue)}


def delete(queue: str) -> None:
    """The pipeline's queues and exchanges gone (each call on a channel of its own: a missing one closes it)."""
    with Connection(AMQP_URL, connect_timeout=5) as conn:
        for name in queue_names(queue):
            for drop in ("queue_delete", "exchange_delete"):
                channel = conn.channel()
                try:
                    getattr(channel, drop)(name)
                except Exception:  # never declared
                    pass
