"""The dispatch table, and how one handler runs: retried when the failure is transient, else dead-lettered."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from chathooks.events import Delivery, Event, Kind, rfc3339
from chathooks.platforms.livechat.tenants import Status
from chathooks.platforms.livechat.tokens import TenantInactive
from chathooks.redis_client import drop_connections
from workers.handlers import marketing, people, profile, rating, tagging, tenants, timeline, triggers
from workers.retry import describe, is_transient, retry_after, spends_no_attempt
from workers.runtime import Runtime
from workers.scheduler import retry_job

log = logging.getLogger(__name__)

Handler = Callable[[Event, Runtime], None]
DELIVER = "tenants.deliver"
REDISPATCH = "pipeline.dispatch"
UNINSTALLED = str(Status.UNINSTALLED)


def deliver(event: Event, rt: Runtime) -> None:
    """An event of an organization that could not be acted for when it came (parked): run once it can."""
    assert rt.outbound.tenancy is not None
    rt.outbound.tenancy.require_active(event.organization)
    dispatch([event], rt)


def redispatch(event: Event, rt: Runtime) -> None:
    """Every handler of the event, each behind its guards: a poison message's work, replayed (workers.poison)."""
    dispatch([event], rt)


# Handlers by the name they are retried and dead-lettered under.
REGISTRY: dict[str, Handler] = {
    "people.remember_users": people.remember_users,
    "people.routing_status": people.routing_status,
    "people.end_thread": people.end_thread,
    "timeline.record": timeline.record,
    "tagging.match": tagging.match,
    "tagging.tagged": tagging.tagged,
    "tagging.untagged": tagging.untagged,
    "tagging.thread_ended": tagging.thread_ended,
    "marketing.sync": marketing.sync,
    "triggers.observe": triggers.observe,
    "triggers.due": triggers.due,
    "triggers.act": triggers.act,
    "silence.fire": triggers.previous_nudge,  # the previous release's nudge deadlines and their dead letters
    "rating.react": rating.react,
    "rating.cancelled": rating.cancelled,
    "profile.seen": profile.seen,
    "profile.rated": profile.rated,
    "tenants.lifecycle": tenants.lifecycle,
    DELIVER: deliver,
    REDISPATCH: redispatch,
}

# In order: people first (roles, the end of a thread), then what depends on them; triggers see a tag event's
# tag. A message's triggers come before its tags are matched: their state's script also looks up the author's
# role. (Tags a message after the end applies reach the triggers with the platform's tag events.)
TABLE: dict[Kind, tuple[str, ...]] = {
    Kind.CHAT_STARTED: ("people.remember_users", "timeline.record", "marketing.sync", "profile.seen",
                        "triggers.observe"),
    Kind.USER_ADDED: ("people.remember_users", "timeline.record"),
    Kind.USER_REMOVED: ("timeline.record",),
    Kind.MESSAGE: ("timeline.record", "triggers.observe", "tagging.match"),
    Kind.FORM_FILLED: ("timeline.record", "marketing.sync", "profile.seen", "triggers.observe"),
    Kind.CHAT_ENDED: ("people.end_thread", "triggers.observe", "timeline.record", "profile.seen",
                      "tagging.thread_ended", "marketing.sync"),
    Kind.CUSTOMER_LEFT: ("timeline.record", "triggers.observe"),
    Kind.TAGGED: ("timeline.record", "tagging.tagged", "triggers.observe"),
    Kind.UNTAGGED: ("timeline.record", "tagging.untagged", "triggers.observe"),
    Kind.RATED: ("timeline.record", "profile.seen", "rating.react", "profile.rated", "triggers.observe"),
    Kind.RATING_CANCELLED: ("timeline.record", "rating.cancelled", "triggers.observe"),
    Kind.ROUTING_STATUS: ("people.routing_status",),
    Kind.VISITOR_QUEUED: ("timeline.record",),
    Kind.LEAD: ("marketing.sync",),
    Kind.TRIGGER_DUE: ("triggers.due",),
    Kind.TRIGGER_FIRED: ("triggers.act",),
    Kind.SILENCE_DEADLINE: ("silence.fire",),
    Kind.TENANT: ("tenants.lifecycle",),
}


def dispatch(events: Iterable[Event], rt: Runtime) -> None:
    """Run every handler for every event; one handler's failure does not hold up the others."""
    for event in events:
        for name in TABLE.get(event.kind, ()):
            run_handler(name, event, rt)


def handle_delivery(message: dict[str, Any], rt: Runtime) -> None:
    """One queued delivery (``Delivery.to_message``), as its task runs it: every handler, then ``close_delivery``."""
    rt.journal.begin_delivery(message)
    tenancy = rt.outbound.tenancy
    for event in Delivery.events_of(message):
        if (tenancy is not None and event.kind is not Kind.TENANT and tenancy.serves(event.source, event.organization)
                and not tenancy.active(event.organization)):
            run_handler(DELIVER, event, rt)  # parks it: dead-lettered, replayed once the tenant is active
        else:
            dispatch([event], rt)
    close_delivery(message, rt)


def close_delivery(message: dict[str, Any], rt: Runtime) -> None:
    """A delivery's handlers are done: its story, its ``processed`` mark and how long it took from the ingress,
    written in one round trip."""
    source = message["source"]
    rt.journal.processed(message["id"], source)
    if message.get("received_at"):
        rt.journal.observations.observe("chathooks_delivery_seconds", time.time() - message["received_at"], source)
    rt.journal.flush()


def run_handler(name: str, event: Event, rt: Runtime, attempt: int = 1, errors: list[dict[str, Any]] | None = None,
                *, replays: int = 0, job: str | None = None) -> None:
    """Run handler ``name`` on ``event``: on failure, schedule the next attempt or dead-letter it.

    ``errors`` are the earlier attempts', ``replays`` how often an operator replayed it. ``job`` is the
    scheduled job this run comes from: the next attempt or the dead letter replaces it in one transaction.
    """
    started = time.perf_counter()
    try:
        REGISTRY[name](event, rt)
    except Exception as exc:
        if isinstance(exc, SoftTimeLimitExceeded):
            drop_connections(rt.redis)  # raised anywhere: a connection may have gone back with a reply on its way
        if isinstance(exc, TenantInactive) and exc.reason == UNINSTALLED:
            # Its organization uninstalled the app: its work is dropped, as its webhooks are (timers included).
            log.info("%s on %s: organization %s uninstalled the app, nothing done", name, event.key, exc.organization)
            rt.journal.count(f"dropped:{UNINSTALLED}")
            return
        errors = [*(errors or []), describe(exc)]
        if is_transient(exc) and (attempt < rt.retry.max_attempts or spends_no_attempt(exc)):
            delay = rt.retry.delay(attempt + 1, retry_after(exc))
            retry = retry_job(name, event.to_dict(), attempt + 1, errors, replays)
            rt.scheduler.schedule(retry, rt.clock() + delay, replacing=job)
            rt.journal.observations.count("chathooks_retries", name)
            rt.journal.handler(event.chat_id, event.thread_id, name, "retried", attempt=attempt,
                               error=_brief(errors[-1]), next_at=rfc3339(rt.clock() + delay))
            log.warning("%s failed on %s (attempt %d), retrying in %.1fs: %s", name, event.key, attempt, delay, exc)
        else:
            item = rt.dead_letters.add(event.to_dict(), name, errors, replays, job)
            rt.journal.handler(event.chat_id, event.thread_id, name, "dead_lettered", attempt=attempt,
                               error=_brief(errors[-1]), dead_letter=item)
            if isinstance(exc, TenantInactive):  # not a failure: kept until its organization can be acted for
                rt.journal.count(f"parked:{exc.reason}")
                log.warning("%s on %s parked as dead letter %s until organization %s is active: %s",
                            name, event.key, item, exc.organization, exc)
                _unpark_if_active(rt, event, item)
            else:
                log.error("%s failed on %s for good after %d attempt(s); dead letter %s: %s",
                          name, event.key, attempt, item, exc)
    else:
        rt.journal.handler(event.chat_id, event.thread_id, name, "done", attempt=attempt if attempt > 1 else None)
    finally:
        rt.journal.observations.observe("chathooks_handler_seconds", time.perf_counter() - started, name)


def _unpark_if_active(rt: Runtime, event: Event, item: str) -> None:
    """A tenant that became active while its work was being parked has already replayed what was parked:
    this item, parked after that, is replayed at once rather than left for an operator."""
    tenancy = rt.outbound.tenancy
    if tenancy is not None and event.organization and tenancy.store.status(event.organization) is Status.ACTIVE:
        rt.dead_letters.replay(item)


def _brief(error: dict[str, Any]) -> str:
    """A failure in a line of the chat's story."""
    return f"{error.get('type')}: {error.get('message', '')}"[:200]
