"""Scheduler: delayed jobs in a sorted set, claimed by lease, removed only on completion."""

from __future__ import annotations

import json

import pytest

from workers.scheduler import LEASE_SECONDS, Scheduler, job, parse, retry_job, retry_payload

NOW = 1_756_720_800.0


@pytest.fixture
def scheduler(settings, fake_redis) -> Scheduler:
    return Scheduler(fake_redis, settings.key_prefix)


def members(claimed):
    return [m for m, _ in claimed]


def test_a_job_is_not_claimed_before_it_is_due(scheduler):
    scheduler.schedule("nudge|C|T|1.0", NOW + 10)
    assert members(scheduler.claim_due(NOW + 9.999)) == []
    assert members(scheduler.claim_due(NOW + 10)) == ["nudge|C|T|1.0"]


def test_the_same_job_scheduled_twice_is_one_job(scheduler, fake_redis):
    member = job("nudge", "C", "T", "1.0")
    scheduler.schedule(member, NOW)
    scheduler.schedule(member, NOW)
    assert fake_redis.zcard(scheduler.key) == 1
    assert members(scheduler.claim_due(NOW)) == [member]


def test_claiming_leases_the_job_instead_of_removing_it(scheduler):
    scheduler.schedule("a", NOW)
    assert members(scheduler.claim_due(NOW)) == ["a"]
    assert scheduler.due_at("a") == NOW + LEASE_SECONDS
    # Another tick within the lease does not hand it out again...
    assert members(scheduler.claim_due(NOW + LEASE_SECONDS - 1)) == []
    # ...but if the job was lost (tick, queue message or worker), it comes back after the lease.
    assert members(scheduler.claim_due(NOW + LEASE_SECONDS)) == ["a"]


def test_complete_removes_the_job(scheduler):
    scheduler.schedule("a", NOW)
    members(scheduler.claim_due(NOW))
    scheduler.complete("a")
    assert scheduler.due_at("a") is None
    assert members(scheduler.claim_due(NOW + 10 * LEASE_SECONDS)) == []


def test_claim_due_takes_only_due_jobs_up_to_the_limit_in_due_order(scheduler):
    for n in range(5):
        scheduler.schedule(f"job{n}", NOW + n)
    scheduler.schedule("later", NOW + 100)
    assert members(scheduler.claim_due(NOW + 10, limit=3)) == ["job0", "job1", "job2"]
    assert members(scheduler.claim_due(NOW + 10)) == ["job3", "job4"]
    assert scheduler.due_at("later") == NOW + 100


def test_due_at_is_none_for_an_unknown_job(scheduler):
    assert scheduler.due_at("nope") is None


def test_nudge_job_round_trips_through_parse():
    member = job("nudge", "RX8QK2MZ1A", "RX8QK2NB7C", "1756720801.104937")
    assert member == "nudge|RX8QK2MZ1A|RX8QK2NB7C|1756720801.104937"
    assert parse(member) == ("nudge", ["RX8QK2MZ1A", "RX8QK2NB7C", "1756720801.104937"])


def test_retry_job_round_trips_through_retry_payload_even_with_separators_in_it():
    event = {"key": "livechat:C:T:ended", "text": "a|b|c"}
    errors = [{"type": "internal", "message": "upstream | down"}]
    member = retry_job("tagging.thread_ended", event, 2, errors, replays=1)
    kind, parts = parse(member)
    assert kind == "retry"
    assert len(parts) == 1
    assert retry_payload(member) == json.loads(parts[0]) == {
        "handler": "tagging.thread_ended", "event": event, "attempt": 2, "errors": errors, "replays": 1}


def test_a_retry_job_from_before_replays_were_counted_has_none():
    member = job("retry", json.dumps({"handler": "h", "event": {"key": "k"}, "attempt": 2, "errors": []}))
    assert retry_payload(member)["replays"] == 0


def test_retry_job_is_canonical_so_the_same_retry_is_one_job():
    a, b = {"key": "k", "kind": "message"}, {"kind": "message", "key": "k"}
    assert retry_job("h", a, 2, []) == retry_job("h", b, 2, [])


def test_scheduling_a_job_in_place_of_another_swaps_them_at_once(scheduler):
    scheduler.schedule("old", NOW)
    scheduler.schedule("new", NOW + 5, replacing="old")
    assert scheduler.due_at("old") is None
    assert scheduler.due_at("new") == NOW + 5


def test_rescheduling_a_job_in_place_of_itself_keeps_it(scheduler):
    scheduler.schedule("a", NOW)
    scheduler.schedule("a", NOW + 5, replacing="a")
    assert scheduler.due_at("a") == NOW + 5


def test_keys_live_under_the_prefix(scheduler, settings):
    assert scheduler.key.startswith(settings.key_prefix)
