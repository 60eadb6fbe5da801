"""The RabbitMQ a benchmark (or a test) runs against: ``CHATHOOKS_AMQP_URL``, else the local one."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from kombu import Connection

from chathooks.amqp import dead_queues, task_queues
from chathooks.settings import Settings

AMQP_URL = os.environ.get("CHATHOOKS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def reachable(url: str = AMQP_URL) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=1).close()
    except OSError:
        return False
    return True


def queue_names(queue: str) -> tuple[str, ...]:
    """A pipeline's queues on RabbitMQ (chathooks.amqp): events and timers, and where each dead-letters."""
    settings = Settings(queue=queue)
    return tuple(q.name for q in (*task_queues(settings), *dead_queues(settings)))


def ready(queue: str, url: str = AMQP_URL) -> dict[str, int]:
    """Messages waiting (not yet delivered to a consumer) in each of the pipeline's queues."""
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        return {q: channel.queue_declare(queue=q, passive=True).message_count for q in queue_names(queue)}


def purge(queue: str, url: str = AMQP_URL) -> None:
    with Connection(url, connect_timeout=5) as conn:
        for name in queue_names(queue):
            _quietly(conn, "queue_purge", name)


def delete(queues: Iterable[str], url: str = AMQP_URL) -> None:
    """The pipelines' queues and exchanges gone."""
    with Connection(url, connect_timeout=5) as conn:
        for queue in queues:
            for name in queue_names(queue):
                for drop in ("queue_delete", "exchange_delete"):
                    _quietly(conn, drop, name)


def _quietly(conn: Connection, method: str, name: str) -> None:
    channel = conn.channel()  # a channel each: a missing queue or exchange closes the channel it is asked on
    try:
        getattr(channel, method)(name)
    except Exception:  # never declared
        pass
