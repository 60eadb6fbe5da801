"""The dispatch table and run_handler: transient failures are retried with backoff, the rest dead-lettered."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from chathooks.events import Event, Kind, Role
from chathooks.http import OutboundError
from tests.unit.workers.conftest import (
    CHAT_ID, THREAD_ID, deliver, delivery_of, events, jobs, records, retry_payloads, run_due, seed, tag_calls,
)
from workers.dispatch import DELIVER, REDISPATCH, REGISTRY, TABLE, dispatch, handle_delivery, run_handler
from workers.once import Busy
from workers.retry import RetryPolicy
from workers.runtime import Runtime
from workers.scheduler import retry_job

EVENT = Event(key="livechat:C1:event:1", source="livechat", kind=Kind.MESSAGE, chat_id="C1", thread_id="T1",
              author_id="u1", author_role=Role.CUSTOMER, text="hello", time="2025-09-01T10:00:00.000000Z")


def transient(retry_after: float | None = None) -> OutboundError:
    return OutboundError("livechat", "tag_thread", "internal", "injected", status=500, transient=True,
                         retry_after=retry_after)


def permanent() -> OutboundError:
    return OutboundError("livechat", "tag_thread", "validation", "injected", status=400, transient=False)


class Handler:
    """A stand-in handler: fails with the queued errors first, then succeeds; remembers what it saw."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.seen: list[Event] = []

    def __call__(self, event: Event, rt: Runtime) -> None:
        self.seen.append(event)
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture
def handler(monkeypatch):  # type: ignore[no-untyped-def]
    """Install a Handler under the name "test.handler"."""

    def install(*errors: BaseException) -> Handler:
        h = Handler(*errors)
        monkeypatch.setitem(REGISTRY, "test.handler", h)
        return h

    return install


# --- the table -----------------------------------------------------------------------------


def test_a_delivery_is_counted_processed_once_however_often_its_task_runs(dry_rt):
    delivery = delivery_of("incoming_event", dry_rt.settings)
    dedupe = dry_rt.keys.dedupe(delivery.id)
    dry_rt.redis.set(dedupe, "1", ex=600)  # the ingress's claim
    for _ in range(3):  # an acknowledgement lost twice
        handle_delivery(delivery.to_message(), dry_rt)
    counts = dry_rt.redis.hgetall(dry_rt.keys.metrics)
    assert (counts[b"processed:livechat"], counts[b"redelivered:livechat"]) == (b"1", b"2")
    assert dry_rt.redis.get(dedupe) == b"processed" and 0 < dry_rt.redis.ttl(dedupe) <= 600


def test_a_delivery_whose_claim_expired_is_still_counted(dry_rt):
    handle_delivery(delivery_of("incoming_event", dry_rt.settings).to_message(), dry_rt)
    assert dry_rt.redis.hget(dry_rt.keys.metrics, "processed:livechat") == b"1"


def test_every_kind_has_handlers_and_every_handler_is_registered():
    assert set(TABLE) == set(Kind)
    # Besides the table's: those that run an event's handlers once its organization is active, and a poison
    # message's when it is replayed.
    assert {name for names in TABLE.values() for name in names} | {DELIVER, REDISPATCH} == set(REGISTRY)


@pytest.mark.parametrize("kind", list(Kind))
def test_each_kinds_handlers_run_in_table_order(kind, dry_rt, monkeypatch):
    ran: list[str] = []
    for name in REGISTRY:
        monkeypatch.setitem(REGISTRY, name, lambda event, rt, name=name: ran.append(name))
    dispatch([Event(key="k", source="livechat", kind=kind, chat_id="C", thread_id="T")], dry_rt)
    assert ran == list(TABLE[kind])


def test_people_run_before_what_depends_on_them():
    assert TABLE[Kind.CHAT_STARTED][0] == "people.remember_users"
    ended = TABLE[Kind.CHAT_ENDED]
    assert ended.index("people.end_thread") < ended.index("tagging.thread_ended")


def test_events_are_handled_one_after_another(dry_rt, monkeypatch):
    ran: list[tuple[str, str]] = []
    for name in REGISTRY:
        monkeypatch.setitem(REGISTRY, name, lambda event, rt, name=name: ran.append((event.key, name)))
    a = Event(key="a", source="livechat", kind=Kind.TAGGED, chat_id="C", thread_id="T", tag="x")
    b = Event(key="b", source="livechat", kind=Kind.USER_REMOVED, chat_id="C")
    dispatch([a, b], dry_rt)
    assert ran == [("a", "timeline.record"), ("a", "tagging.tagged"), ("a", "triggers.observe"),
                   ("b", "timeline.record")]


@pytest.mark.parametrize("error", [ValueError("a bug"), permanent(), transient()])
def test_one_failing_handler_does_not_stop_the_others(error, dry_rt, monkeypatch):
    ran: list[str] = []
    names = TABLE[Kind.CHAT_ENDED]
    for name in names:
        monkeypatch.setitem(REGISTRY, name, lambda event, rt, name=name: ran.append(name))

    def failing(event: Event, rt: Runtime) -> None:
        ran.append(names[1])
        raise error

    monkeypatch.setitem(REGISTRY, names[1], failing)
    dispatch([Event(key="k", source="livechat", kind=Kind.CHAT_ENDED, chat_id="C", thread_id="T")], dry_rt)
    assert ran == list(names)
    assert len(dry_rt.dead_letters) + len(jobs(dry_rt, "retry")) == 1


# --- retries -------------------------------------------------------------------------------


def test_a_transient_failure_schedules_a_retry_with_the_next_attempt_and_the_error(handler, dry_rt, clock):
    handler(transient())
    run_handler("test.handler", EVENT, dry_rt)
    (payload, due), = retry_payloads(dry_rt)
    assert payload["handler"] == "test.handler"
    assert payload["attempt"] == 2
    assert Event.from_dict(payload["event"]) == EVENT
    (err,) = payload["errors"]
    assert (err["service"], err["type"], err["transient"]) == ("livechat", "internal", True)
    assert clock.now + 1 <= due <= clock.now + 2  # attempt 2: 2 s, jittered to 1-2 s
    assert len(dry_rt.dead_letters) == 0


def test_retry_after_is_honoured_when_scheduling_the_retry(handler, dry_rt, clock):
    handler(transient(retry_after=120))
    run_handler("test.handler", EVENT, dry_rt)
    (_, due), = retry_payloads(dry_rt)
    assert due == clock.now + 120


def test_busy_is_retried(handler, dry_rt):
    handler(Busy("tag:T1:refund"))
    run_handler("test.handler", EVENT, dry_rt)
    (payload, _), = retry_payloads(dry_rt)
    assert payload["errors"][0]["type"] == "Busy"


@pytest.mark.parametrize("waiting", [Busy("tag:T1:refund"), OutboundError(
    "livechat", "tag_thread", "rate_limited", "organization over its rate", transient=True, retry_after=3.0)])
def test_waiting_on_a_claim_or_an_organizations_rate_spends_no_attempt(handler, dry_rt, waiting):
    handler(waiting)
    last = dry_rt.retry.max_attempts
    run_handler("test.handler", EVENT, dry_rt, attempt=last)  # past the last attempt: still retried
    (payload, _), = retry_payloads(dry_rt)
    assert payload["attempt"] == last + 1 and len(dry_rt.dead_letters) == 0


def test_a_due_retry_runs_the_handler_again_and_completes(handler, dry_rt, clock):
    h = handler(transient())
    run_handler("test.handler", EVENT, dry_rt)
    assert run_due(dry_rt, clock.now + 0.5) == []  # not before it is due
    run_due(dry_rt, clock.advance(2))
    assert h.seen == [EVENT, EVENT]
    assert jobs(dry_rt, "retry") == []
    assert len(dry_rt.dead_letters) == 0


def test_a_retry_that_fails_again_schedules_the_next_attempt_with_both_errors(handler, dry_rt, clock):
    handler(transient(), transient())
    run_handler("test.handler", EVENT, dry_rt)
    run_due(dry_rt, clock.advance(2))
    (payload, due), = retry_payloads(dry_rt)  # the old job completed, one new one
    assert payload["attempt"] == 3
    assert len(payload["errors"]) == 2
    assert clock.now + 2 <= due <= clock.now + 4


def test_a_permanent_failure_dead_letters_at_once(handler, dry_rt):
    handler(permanent())
    run_handler("test.handler", EVENT, dry_rt)
    assert jobs(dry_rt, "retry") == []
    (item,) = dry_rt.dead_letters.list()
    assert item["handler"] == "test.handler"
    assert Event.from_dict(item["event"]) == EVENT
    assert [e["type"] for e in item["errors"]] == ["validation"]


def test_a_bug_in_a_handler_is_dead_lettered_not_retried(handler, dry_rt):
    handler(KeyError("oops"))
    run_handler("test.handler", EVENT, dry_rt)
    assert jobs(dry_rt, "retry") == []
    assert dry_rt.dead_letters.list()[0]["errors"][0]["type"] == "KeyError"


def test_a_permanent_failure_after_retries_dead_letters_with_every_attempts_error(handler, dry_rt, clock):
    handler(transient(), transient(retry_after=5), permanent())
    run_handler("test.handler", EVENT, dry_rt)
    run_due(dry_rt, clock.advance(2))
    run_due(dry_rt, clock.advance(5))
    assert jobs(dry_rt, "retry") == []
    (item,) = dry_rt.dead_letters.list()
    assert [(e["type"], e["transient"]) for e in item["errors"]] == [
        ("internal", True), ("internal", True), ("validation", False)]
    assert item["errors"][1]["retry_after"] == 5


def test_the_last_attempt_dead_letters_even_when_transient(handler, settings, fake_redis, clock):
    rt = Runtime.build(settings, fake_redis, retry=RetryPolicy(max_attempts=4), clock=clock)
    h = handler(*[transient() for _ in range(10)])
    run_handler("test.handler", EVENT, rt)
    for _ in range(10):
        run_due(rt, clock.advance(rt.retry.cap))
    assert len(h.seen) == 4
    assert jobs(rt, "retry") == []
    (item,) = rt.dead_letters.list()
    assert len(item["errors"]) == 4


def test_waiting_on_a_claim_held_elsewhere_spends_no_attempt(handler, settings, fake_redis, clock):
    rt = Runtime.build(settings, fake_redis, retry=RetryPolicy(max_attempts=2), clock=clock)
    h = handler(Busy("tag:T:x"), Busy("tag:T:x"), Busy("tag:T:x"))
    run_handler("test.handler", EVENT, rt)
    for _ in range(4):
        run_due(rt, clock.advance(rt.retry.cap))
    assert len(h.seen) == 4  # three times held elsewhere, then the claim had lapsed and it ran
    assert jobs(rt, "retry") == [] and rt.dead_letters.list() == []


def test_run_handler_at_the_last_attempt_dead_letters_with_the_earlier_errors(handler, dry_rt):
    handler(transient())
    earlier = [{"type": "internal", "transient": True}] * (dry_rt.retry.max_attempts - 1)
    run_handler("test.handler", EVENT, dry_rt, attempt=dry_rt.retry.max_attempts, errors=earlier)
    assert jobs(dry_rt, "retry") == []
    (item,) = dry_rt.dead_letters.list()
    assert len(item["errors"]) == dry_rt.retry.max_attempts


def test_a_bad_rating_survives_the_retry_round_trip(dry_rt, monkeypatch, clock):
    (rated,) = events("thread_properties_updated", dry_rt.settings)
    assert rated.rating == 0
    h = Handler(transient())
    monkeypatch.setitem(REGISTRY, "rating.react", h)
    dispatch([rated], dry_rt)
    run_due(dry_rt, clock.advance(2))
    assert h.seen == [rated, rated]


def test_a_failing_jobs_retry_replaces_it_in_one_step(handler, dry_rt, clock):
    handler(transient())
    old = retry_job("test.handler", EVENT.to_dict(), 2, [], replays=1)
    dry_rt.scheduler.schedule(old, clock.now)
    run_handler("test.handler", EVENT, dry_rt, 2, [], replays=1, job=old)
    (payload, _), = retry_payloads(dry_rt)  # the old job is gone without being completed
    assert (payload["attempt"], payload["replays"]) == (3, 1)


def test_a_failing_job_is_replaced_by_its_dead_letter_in_one_step(handler, dry_rt, clock):
    handler(permanent())
    old = retry_job("test.handler", EVENT.to_dict(), 1, [], replays=2)
    dry_rt.scheduler.schedule(old, clock.now)
    run_handler("test.handler", EVENT, dry_rt, replays=2, job=old)
    assert jobs(dry_rt, "retry") == []
    (item,) = dry_rt.dead_letters.list()
    assert (item["replays"], item["attempts"]) == (2, 1)


# --- against the fake API ------------------------------------------------------------------


def test_an_api_outage_on_chat_end_is_retried_until_the_tag_is_applied(live_rt, livechat, clock):
    seed(livechat)
    livechat.fail_next("tag_thread", status=503, times=2)
    deliver(live_rt, "chat_deactivated")
    assert tag_calls(livechat) == ["order-status", "refund"]  # both attempted, both refused
    (payload, _), = retry_payloads(live_rt)
    assert payload["handler"] == "tagging.thread_ended"
    assert payload["errors"][0]["type"] == "service_unavailable"
    run_due(live_rt, clock.advance(2))
    run_due(live_rt, clock.advance(4))
    assert sorted(livechat.chat(CHAT_ID)["thread"]["tags"]) == ["order-status", "refund"]
    assert jobs(live_rt, "retry") == [] and len(live_rt.dead_letters) == 0
    assert len(records(live_rt, "tag_thread", "sent")) == 2


def test_a_rate_limit_retry_waits_for_retry_after(live_rt, livechat, clock):
    seed(livechat)
    livechat.fail_next("tag_thread", error_type="too_many_requests", retry_after=90)
    deliver(live_rt, "chat_deactivated")
    (payload, due), = retry_payloads(live_rt)
    assert due == clock.now + 90
    assert run_due(live_rt, clock.now + 89) == []
    run_due(live_rt, clock.advance(90))
    assert sorted(livechat.chat(CHAT_ID)["thread"]["tags"]) == ["order-status", "refund"]


def test_a_final_api_error_dead_letters_the_handler_with_its_event(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("get_chat", error_type="authorization")
    deliver(live_rt, "chat_deactivated")
    assert jobs(live_rt, "retry") == []
    (item,) = live_rt.dead_letters.list()
    assert item["handler"] == "tagging.thread_ended"
    assert (item["event"]["chat_id"], item["event"]["thread_id"]) == (CHAT_ID, THREAD_ID)
    assert item["errors"][0]["type"] == "authorization"


def test_a_handler_cut_short_by_the_soft_time_limit_closes_the_redis_connections_then_retries(dry_rt, monkeypatch):
    closed = []
    monkeypatch.setattr(dry_rt.redis.connection_pool, "disconnect", lambda *a, **k: closed.append(1))

    def cut_short(event, rt):  # type: ignore[no-untyped-def]
        raise SoftTimeLimitExceeded()
    monkeypatch.setitem(REGISTRY, "timeline.record", cut_short)
    (event,) = events("incoming_event", dry_rt.settings)
    run_handler("timeline.record", event, dry_rt)
    assert closed == [1] and len(dry_rt.dead_letters) == 0
    assert [p["handler"] for p, _ in retry_payloads(dry_rt)] == ["timeline.record"]
