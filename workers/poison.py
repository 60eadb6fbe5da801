"""Poison messages: tasks RabbitMQ dead-lettered after each of ``CHATHOOKS_AMQP_DELIVERY_LIMIT``
deliveries ended without an acknowledgement (their worker process died, say, every time).

The tick moves them from the ``.dead`` queues into the dead-letter store, where ``chathooks dlq``
shows them beside every other failure and ``dlq replay`` runs them again: a delivery as one item per
event (every handler of the event, each behind its guards), a scheduled job as the handler it would
have run. Each message is acknowledged only after its items are stored, so a worker dying mid-move
leaves it in the queue for the next tick (stored twice at worst: one item per event and handler).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from chathooks import amqp
from chathooks.events import Delivery, Event
from chathooks.queue_message import PROCESS_DELIVERY, RUN_JOB
from workers.dispatch import REDISPATCH
from workers.handlers import triggers
from workers.runtime import Runtime
from workers.scheduler import parse, retry_payload

log = logging.getLogger(__name__)

MOVED_PER_TICK = 100  # a flood of poison is moved over several ticks, not in one long task


def drain_broker(rt: Runtime, app: Any) -> int:
    """Move what waits in RabbitMQ's dead queues into the dead-letter store, through the app's pooled
    connection; returns how many messages moved."""
    with app.pool.acquire(block=True) as connection:
        return drain(rt, connection.default_channel, tuple(q.name for q in amqp.dead_queues(rt.settings)))


def drain(rt: Runtime, channel: Any, queues: tuple[str, ...]) -> int:
    """Move what waits in ``queues`` into the dead-letter store; returns how many messages.

    A message that cannot be read as a task of ours is logged and dropped (rejected; the dead queues
    dead-letter nowhere). Redis failing puts the message back and ends this tick's move.
    """
    moved = 0
    for queue in queues:
        while moved < MOVED_PER_TICK and (message := channel.basic_get(queue=queue, no_ack=False)) is not None:
            try:
                store(rt, message.headers or {}, message.body)
            except redis.RedisError:
                channel.basic_reject(message.delivery_tag, requeue=True)
                raise
            except Exception:
                log.exception("a dead-lettered message could not be stored; dropped")
                channel.basic_reject(message.delivery_tag, requeue=False)
            else:
                channel.basic_ack(message.delivery_tag)
            moved += 1
    return moved


def store(rt: Runtime, headers: dict[str, Any], body: bytes | str) -> list[str]:
    """Dead-letter one poison message's work; returns the items' ids (none for a clock tick)."""
    error = _poison_error(headers, rt.settings.amqp_delivery_limit)
    try:
        args = json.loads(body)[0]
    except (ValueError, TypeError, IndexError, KeyError):
        log.error("a dead-lettered message that is no task of ours was dropped (task %r)", headers.get("task"))
        return []
    task = headers.get("task")
    if task == PROCESS_DELIVERY:
        rt.journal.count(f"poisoned:{args[0].get('source')}")  # so that queued = processed + poisoned
        return [rt.dead_letters.add(event.to_dict(), REDISPATCH, [error]) for event in Delivery.events_of(args[0])]
    if task == RUN_JOB:
        member = args[0]
        handler, event, errors = _job_work(member)
        return [rt.dead_letters.add(event, handler, [*errors, error], job=member)]
    log.info("dead-lettered %s dropped: a clock tick is sent again every second", task)
    return []


def _job_work(member: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The handler a scheduled job runs, its event, and the errors of its earlier attempts."""
    kind, parts = parse(member)
    if kind == "retry":
        retry = retry_payload(member)
        return retry["handler"], retry["event"], retry["errors"]
    if kind == "fire":
        return triggers.ACT, triggers.fired_event(*parts).to_dict(), []
    event: Event = triggers.due_event(*parts) if kind == "trigger" else triggers.previous_deadline(*parts)
    return REDISPATCH, event.to_dict(), []


def _poison_error(headers: dict[str, Any], limit: int) -> dict[str, Any]:
    # The dead-lettered copy's own x-delivery-count starts again from 0: the limit says how often it went out.
    reason = (headers.get("x-death") or [{}])[0].get("reason", "delivery_limit")
    return {"type": "poison", "transient": False, "at": time.time(),
            "message": f"delivered more than {limit} times without an acknowledgement (its worker died?); "
                       f"RabbitMQ dead-lettered it ({reason})"}
