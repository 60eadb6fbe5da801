"""RabbitMQ as the broker: the queues the ingress and the workers both declare, and the confirmed publish.

The event and scheduled queues are quorum queues with a delivery limit: a message whose task kills its
worker every time (a poison message) is dead-lettered into ``<queue>.dead`` after that many deliveries
instead of looping; the workers move what lands there into the dead-letter store
(``workers.poison``). Both sides declare the same arguments (RabbitMQ refuses a redeclaration that
differs), so whichever starts first creates the queues and a publish is never unroutable for want of a
worker.

The ingress publishes through one connection and channel per process, opened on first use (after
gunicorn's fork) and again after any failure, with publisher confirms and ``mandatory``: a publish
returns only once RabbitMQ has the message in a queue, and a nack, a return (unroutable), a timeout or
a dropped connection raises, so the caller answers 503, never 200.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from typing import Any

import amqp
from kombu import Connection, Exchange, Queue

from chathooks.queue_message import new_task_id, task_body, task_headers
from chathooks.settings import Settings

log = logging.getLogger(__name__)

DEAD = ".dead"


def dead_queue_name(queue: str) -> str:
    return queue + DEAD


def _queue(name: str, arguments: dict[str, Any]) -> Queue:
    return Queue(name, Exchange(name, "direct"), routing_key=name, durable=True,
                 queue_arguments={"x-queue-type": "quorum", **arguments})


def task_queues(settings: Settings) -> tuple[Queue, ...]:
    """The queues the workers consume, timers first, each dead-lettering into its ``.dead`` queue."""
    return tuple(_queue(name, {"x-delivery-limit": settings.amqp_delivery_limit, "x-dead-letter-exchange": "",
                               "x-dead-letter-routing-key": dead_queue_name(name),
                               # Kept until the dead queue has it, not dropped if that fails (the default).
                               "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
                 for name in (settings.scheduled_queue, settings.queue))


def dead_queues(settings: Settings) -> tuple[Queue, ...]:
    """Where poison messages end: read by the workers' drain, never consumed as tasks."""
    return tuple(_queue(dead_queue_name(name), {}) for name in (settings.scheduled_queue, settings.queue))


def declare(channel: Any, settings: Settings) -> None:
    """Declare every queue (and its exchange): idempotent while the arguments agree."""
    for queue in (*task_queues(settings), *dead_queues(settings)):
        queue(channel).declare()


def task_message(channel: Any, task: str, args: list[Any], argsrepr: str) -> Any:
    """A persistent Celery protocol-2 message of ``task`` for ``channel`` (py-amqp's ``Message``)."""
    task_id = new_task_id()
    return channel.prepare_message(task_body(args), 0, "application/json", "utf-8",
                                   task_headers(task, task_id, argsrepr),
                                   {"correlation_id": task_id, "reply_to": "", "delivery_mode": 2})


class Unconfirmed(Exception):
    """RabbitMQ did not confirm the message into a queue: nacked, returned unroutable, or no answer in time."""


class Publisher:
    """Publishes task messages with confirms and ``mandatory`` through this process's one connection."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.publish_timeout_seconds
        self._pid: int | None = None
        self._connection: Connection | None = None
        self._channel: Any = None
        # py-amqp channels are not thread-safe: a threaded server (gthread) takes turns on the one channel.
        self._lock = threading.RLock()

    def publish(self, queue: str, task: str, args: list[Any], argsrepr: str) -> None:
        """Publish a message of ``task``; returns once it is confirmed into ``queue``, raises otherwise.

        A connection RabbitMQ has closed since the last publish (a restart) is found before anything is
        written to it, and opened again. Once the message is written, any failure is the caller's: it
        may be queued already, so it is never published a second time here.
        """
        with self._lock:
            self._drop_if_closed()
            self._publish(queue, task, args, argsrepr)

    def _drop_if_closed(self) -> None:
        if self._connection is None or self._pid != os.getpid():
            return
        try:
            self._connection.drain_events(timeout=0)  # nothing to read: socket.timeout, at once
        except socket.timeout:
            return
        except Exception as exc:  # closed by RabbitMQ, reset: open a new one
            log.info("broker connection found closed (%s); reconnecting", type(exc).__name__)
            self.close()

    def _publish(self, queue: str, task: str, args: list[Any], argsrepr: str) -> None:
        channel = self._channel_for_this_process()
        message = task_message(channel, task, args, argsrepr)
        try:
            channel.basic_publish(message, exchange="", routing_key=queue, mandatory=True,
                                  timeout=self._timeout, confirm_timeout=self._timeout)
        except amqp.exceptions.MessageNacked as exc:
            self.close()
            raise Unconfirmed("nacked") from exc
        except amqp.exceptions.ChannelError as exc:  # 312 NO_ROUTE: returned, not queued
            self.close()
            raise Unconfirmed(f"returned: {exc.reply_text or exc}") from exc
        except (socket.timeout, TimeoutError) as exc:  # it may yet be queued: a retry is then a duplicate
            self.close()
            raise Unconfirmed(f"no confirm within {self._timeout:g} s") from exc
        except Exception:
            self.close()
            raise

    def ping(self) -> bool:
        """Whether this process can reach RabbitMQ (its connection, opened if need be, answers)."""
        try:
            with self._lock:
                self._connection_for_this_process().drain_events(timeout=0.001)  # a closed socket raises
        except socket.timeout:
            return True
        except Exception as exc:
            log.warning("broker not reachable: %s", type(exc).__name__)
            self.close()
            return False
        return True

    def depths(self, queues: tuple[str, ...]) -> dict[str, int]:
        """Messages ready in each queue; none when RabbitMQ cannot be asked (the gauge is then absent)."""
        try:
            with self._lock:
                channel = self._channel_for_this_process()
                return {q: channel.queue_declare(queue=q, passive=True).message_count for q in queues}
        except Exception as exc:
            log.warning("queue depths not read: %s", type(exc).__name__)
            self.close()
            return {}

    def close(self) -> None:
        """Drop the connection without the closing handshake: after a failure it would wait on a path that
        may not answer (``collect`` closes the socket; RabbitMQ requeues nothing, it never delivered to us)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                connection.collect()

    def _channel_for_this_process(self) -> Any:
        self._connection_for_this_process()
        return self._channel

    def _connection_for_this_process(self) -> Connection:
        if self._pid != os.getpid():  # forked: the parent's socket is not ours to use
            self._connection, self._channel, self._pid = None, None, os.getpid()
        if self._connection is None:
            connection = Connection(self._settings.broker_url, connect_timeout=self._timeout,
                                    transport_options={"confirm_publish": True})
            try:
                # Established once, without kombu's retry after a 2 s sleep; then every read on the socket
                # (channel open, declarations, confirm.select) is bounded too, not only connect and confirm.
                connection.connection.transport.sock.settimeout(self._timeout)
                channel = connection.channel()
                declare(channel, self._settings)
            except Exception:
                with contextlib.suppress(Exception):
                    connection.collect()
                raise
            self._connection, self._channel = connection, channel
        return self._connection
