"""Celery tasks: thin shells around the dispatch table and the scheduler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import redis
from celery import shared_task
from celery.exceptions import Reject

from chathooks.events import Event
from chathooks.queue_message import PROCESS_DELIVERY, RUN_JOB, TICK
from workers import poison
from workers.dispatch import dispatch, handle_delivery, run_handler
from workers.handlers import triggers
from workers.runtime import Runtime, runtime_for
from workers.scheduler import describe, parse, retry_payload

log = logging.getLogger(__name__)



REDIS_PAUSE = 1.0  # seconds between tries while Redis is away: no tight loop


def through_redis_outages(rt: Runtime, work: Callable[[], None]) -> None:
    """Run ``work``; Redis failing mid-task (a restart, a failover) runs it again rather than drop the message.

    Handlers' own failures never get here (``run_handler`` retries or dead-letters them). Rerunning the
    whole delivery is safe: every side effect is guarded. With Redis as the broker the message goes back
    on the queue. On RabbitMQ a requeue counts toward the queue's delivery limit, so a few seconds'
    outage would dead-letter healthy deliveries as poison: the task waits for Redis and runs the work
    again itself, for up to half its time limit, before it gives the message back.
    """
    give_up = time.monotonic() + rt.settings.task_time_limit_seconds / 2
    while True:
        try:
            work()
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            rt.journal.discard()  # the failed run's unwritten story and counts: the next run tells its own
            time.sleep(REDIS_PAUSE)
            if rt.settings.broker_is_redis or time.monotonic() >= give_up:
                raise Reject(exc, requeue=True) from exc
            log.warning("Redis unavailable mid-task (%s); running it again", type(exc).__name__)


@shared_task(name=PROCESS_DELIVERY, bind=True)
def process_delivery(self, message: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Handle one queued delivery (see ``Delivery.to_message``)."""
    rt = runtime_for(self.app)
    through_redis_outages(rt, lambda: handle_delivery(message, rt))


# Beat sends it every second: no task events, so Flower's history keeps the work, not the clock.
@shared_task(name=TICK, bind=True, ignore_result=True, send_events=False)
def tick(self) -> int:  # type: ignore[no-untyped-def]
    """Queue every job that is due (beat sends this every second)."""
    rt = runtime_for(self.app)
    due = rt.scheduler.claim_due(rt.clock())
    for member, due_at in due:
        run_job.apply_async(args=[member, due_at], queue=rt.settings.scheduled_queue, argsrepr=job_repr(member))
    if not rt.settings.broker_is_redis:
        poison.drain_broker(rt, self.app)
    rt.journal.flush()  # observations only: at most once a second
    return len(due)


@shared_task(name=RUN_JOB, bind=True)
def run_job(self, member: str, due_at: float | None = None) -> None:  # type: ignore[no-untyped-def]
    """Run one scheduled job; ``due_at`` is its deadline as the tick found it (jobs queued before it: none)."""
    rt = runtime_for(self.app)
    kind, parts = parse(member)
    if due_at is not None and kind in ("nudge", "retry"):  # a trigger's is its evaluation's to tell (nudge or not)
        rt.journal.late(kind, due_at, rt.clock())
    if kind == "trigger":
        dispatch([triggers.due_event(*parts)], rt)
    elif kind == "nudge":  # a silence deadline the previous release scheduled
        dispatch([triggers.previous_deadline(*parts)], rt)
    elif kind == "fire":  # a fired window's actions, their worker lost before they were done
        run_handler(triggers.ACT, triggers.fired_event(*parts), rt, job=member)  # parts: see fire_jobs
    elif kind == "retry":
        retry = retry_payload(member)
        run_handler(retry["handler"], Event.from_dict(retry["event"]), rt, retry["attempt"], retry["errors"],
                    replays=retry["replays"], job=member)
    rt.journal.later(partial(rt.scheduler.complete, member))  # removed with the task's writes, or run again
    rt.journal.flush()


def job_repr(member: str) -> str:
    """What Flower shows of a job: its kind and chat, never a retry's event (it may hold an email)."""
    job = describe(member)
    if job.kind == "retry":
        return f"retry {job.detail['handler']} attempt {job.detail['attempt']} chat {job.chat_id}"
    if job.kind == "fire":
        return f"fire {job.detail['trigger']} chat {job.chat_id}"
    return f"{job.kind} chat {job.chat_id}"
