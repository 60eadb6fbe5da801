"""The dead-letter store: items, filters, replay into the scheduler and purge."""

from __future__ import annotations

import pytest

from tests.unit.workers.conftest import CHAT_ID, deliver, jobs, retry_payloads, run_due, seed, tag_calls
from tests.unit.workers.test_dispatch import EVENT as MESSAGE
from tests.unit.workers.test_dispatch import Handler, permanent, transient
from workers.dead_letters import DeadLetters, Filter
from workers.dispatch import REGISTRY, run_handler
from workers.runtime import Runtime
from workers.scheduler import Scheduler, retry_job

EVENT = {"key": "livechat:C:T:ended", "source": "livechat", "kind": "chat_ended", "chat_id": "C", "thread_id": "T"}
ERRORS = [{"type": "internal", "transient": True, "at": 100.0}, {"type": "validation", "transient": False, "at": 104.0}]
NOW = 1_756_720_800.0


@pytest.fixture
def dlq(settings, fake_redis) -> DeadLetters:
    return DeadLetters(fake_redis, settings.key_prefix)


@pytest.fixture
def schedule(settings, fake_redis) -> Scheduler:
    return Scheduler(fake_redis, settings.key_prefix)


def scheduled(schedule: Scheduler) -> list[tuple[str, float]]:
    return [(m.decode(), due) for m, due in schedule._redis.zrange(schedule.key, 0, -1, withscores=True)]


def event(n: int, kind: str = "chat_ended", chat: str = "C") -> dict[str, str]:
    return {**EVENT, "key": f"k{n}", "kind": kind, "chat_id": chat}


# --- items ---------------------------------------------------------------------------------


def test_an_item_keeps_event_handler_every_error_and_its_times(dlq):
    item_id = dlq.add(EVENT, "tagging.thread_ended", ERRORS)
    item = dlq.get(item_id)
    assert item["id"] == item_id
    assert item["event"] == EVENT
    assert item["handler"] == "tagging.thread_ended"
    assert item["errors"] == ERRORS
    assert item["attempts"] == 2
    assert (item["first_failed_at"], item["last_failed_at"]) == (100.0, 104.0)
    assert isinstance(item["dead_at"], float)
    assert item["replays"] == 0
    assert len(dlq) == 1
    assert dlq.list() == [item]


def test_the_same_event_and_handler_is_one_item_with_the_latest_errors(dlq):
    first = dlq.add(EVENT, "tagging.thread_ended", ERRORS[:1])
    second = dlq.add(EVENT, "tagging.thread_ended", ERRORS, replays=2)
    assert first == second
    assert len(dlq) == 1
    assert dlq.get(first)["errors"] == ERRORS
    assert dlq.get(first)["replays"] == 2


def test_different_handlers_of_one_event_are_separate_items(dlq):
    a = dlq.add(EVENT, "tagging.thread_ended", ERRORS)
    b = dlq.add(EVENT, "silence.thread_ended", ERRORS)
    assert a != b
    assert {i["handler"] for i in dlq.list()} == {"tagging.thread_ended", "silence.thread_ended"}


def test_list_is_oldest_first(dlq):
    ids = [dlq.add(event(n), "h", ERRORS) for n in range(3)]
    assert [i["id"] for i in dlq.list()] == ids


def test_adding_the_failed_job_completes_it_in_the_same_transaction(dlq, schedule):
    schedule.schedule("retry|job", NOW)
    schedule.schedule("other", NOW)
    dlq.add(EVENT, "h", ERRORS, job="retry|job")
    assert [m for m, _ in scheduled(schedule)] == ["other"]


def test_empty_store(dlq):
    assert len(dlq) == 0 and dlq.list() == [] and dlq.get("nope") is None
    assert dlq.replay("nope") is None and dlq.purge("nope") is None


def test_items_never_expire(dlq, fake_redis):
    dlq.add(EVENT, "h", ERRORS)
    assert fake_redis.ttl(dlq.items) == fake_redis.ttl(dlq.index) == -1


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def three(dlq) -> dict[str, str]:
    """A tagging failure in chat C, a rating failure in chat D, a nudge failure in chat C."""
    return {"tag": dlq.add(event(1), "tagging.thread_ended", ERRORS),
            "rating": dlq.add(event(2, "rated", "D"), "rating.react", ERRORS),
            "nudge": dlq.add(event(3, "silence_deadline"), "silence.fire", ERRORS)}


@pytest.mark.parametrize("match, names", [
    (Filter(), ["tag", "rating", "nudge"]),
    (Filter(handler="rating.react"), ["rating"]),
    (Filter(kind="silence_deadline"), ["nudge"]),
    (Filter(chat="C"), ["tag", "nudge"]),
    (Filter(chat="C", handler="silence.fire"), ["nudge"]),
    (Filter(chat="D", handler="silence.fire"), []),
    (Filter(handler="nope"), []),
])
def test_filters_by_handler_kind_and_chat(dlq, three, match, names):
    assert [i["id"] for i in dlq.list(match)] == [three[n] for n in names]


def test_filter_by_when_it_was_dead_lettered(dlq, three):
    dead_at = {i["id"]: i["dead_at"] for i in dlq.list()}
    cutoff = dead_at[three["rating"]]
    assert [i["id"] for i in dlq.list(Filter(dead_before=cutoff))] == [three["tag"], three["rating"]]
    assert dlq.list(Filter(dead_before=dead_at[three["tag"]] - 1)) == []


# --- replay --------------------------------------------------------------------------------


def test_replay_moves_the_item_into_the_schedule_due_now_at_attempt_one(dlq, schedule):
    item_id = dlq.add(EVENT, "tagging.thread_ended", ERRORS)
    replayed = dlq.replay(item_id, now=NOW)
    assert replayed["id"] == item_id
    assert dlq.get(item_id) is None and len(dlq) == 0
    assert scheduled(schedule) == [(retry_job("tagging.thread_ended", EVENT, 1, [], replays=1), NOW)]


def test_replaying_the_same_id_twice_schedules_it_once(dlq, schedule):
    item_id = dlq.add(EVENT, "h", ERRORS)
    assert dlq.replay(item_id, now=NOW) is not None
    assert dlq.replay(item_id, now=NOW + 1) is None
    assert len(scheduled(schedule)) == 1


def test_the_replay_count_is_carried(dlq, schedule):
    dlq.add(EVENT, "h", ERRORS, replays=2)
    dlq.replay(dlq.item_id(EVENT["key"], "h"), now=NOW)
    [(member, _)] = scheduled(schedule)
    assert member == retry_job("h", EVENT, 1, [], replays=3)


def test_replay_takes_only_a_matching_item(dlq, schedule, three):
    assert dlq.replay(three["tag"], Filter(handler="rating.react")) is None
    assert dlq.get(three["tag"]) is not None and scheduled(schedule) == []


def test_an_item_changed_while_being_replayed_is_replayed_once_as_it_is_now(dlq, schedule, monkeypatch):
    """Re-dead-lettered between the read and the move: the move is refused, then redone on the new version."""
    item_id = dlq.add(EVENT, "h", ERRORS)
    take, calls = dlq._take, []

    def racing(**kwargs):  # type: ignore[no-untyped-def]
        if not calls:
            dlq.add(EVENT, "h", ERRORS[:1], replays=4)
        calls.append(kwargs)
        return take(**kwargs)

    monkeypatch.setattr(dlq, "_take", racing)
    assert dlq.replay(item_id, now=NOW)["replays"] == 4
    assert len(calls) == 2
    assert scheduled(schedule) == [(retry_job("h", EVENT, 1, [], replays=5), NOW)]
    assert len(dlq) == 0


# --- purge ---------------------------------------------------------------------------------


def test_purge_deletes_the_item_and_schedules_nothing(dlq, schedule):
    item_id = dlq.add(EVENT, "h", ERRORS)
    assert dlq.purge(item_id)["id"] == item_id
    assert dlq.get(item_id) is None and len(dlq) == 0 and dlq.list() == []
    assert dlq.purge(item_id) is None
    assert scheduled(schedule) == []


def test_purge_takes_only_a_matching_item(dlq, three):
    assert dlq.purge(three["tag"], Filter(chat="D")) is None
    assert dlq.purge(three["rating"], Filter(chat="D")) is not None
    assert {i["id"] for i in dlq.list()} == {three["tag"], three["nudge"]}


# --- back through the pipeline -------------------------------------------------------------


def test_a_replay_runs_the_handler_once_and_a_failure_returns_it_with_its_replay_count(dry_rt, monkeypatch):
    handler = Handler(KeyError("still broken"), KeyError("still broken"))
    monkeypatch.setitem(REGISTRY, "test.handler", handler)
    run_handler("test.handler", MESSAGE, dry_rt)
    [item] = dry_rt.dead_letters.list()
    assert dry_rt.dead_letters.replay(item["id"], now=dry_rt.clock())
    assert dry_rt.dead_letters.replay(item["id"], now=dry_rt.clock()) is None
    assert len(run_due(dry_rt)) == 1 and len(handler.seen) == 2
    [again] = dry_rt.dead_letters.list()
    assert (again["id"], again["replays"], again["attempts"]) == (item["id"], 1, 1)
    assert jobs(dry_rt, "retry") == []

    dry_rt.dead_letters.replay(item["id"], now=dry_rt.clock())  # fixed now
    run_due(dry_rt)
    assert handler.seen == [MESSAGE] * 3
    assert len(dry_rt.dead_letters) == 0 and jobs(dry_rt, "retry") == []


def test_a_replayed_job_retries_transient_failures_with_its_replay_count(dry_rt, monkeypatch):
    monkeypatch.setitem(REGISTRY, "test.handler", Handler(permanent(), transient()))
    run_handler("test.handler", MESSAGE, dry_rt)
    dry_rt.dead_letters.replay(dry_rt.dead_letters.list()[0]["id"], now=dry_rt.clock())
    run_due(dry_rt)
    [(payload, _)] = retry_payloads(dry_rt)
    assert (payload["attempt"], payload["replays"], len(payload["errors"])) == (2, 1, 1)


def test_a_replay_skips_the_side_effects_already_done(live_rt: Runtime, livechat):
    """One tag refused for good, the other applied: the replay sends only the refused one, once."""
    seed(livechat)
    livechat.fail_next("tag_thread", error_type="validation")
    deliver(live_rt, "chat_deactivated")
    assert tag_calls(livechat) == ["order-status", "refund"]
    [item] = live_rt.dead_letters.list()
    assert item["handler"] == "tagging.thread_ended" and item["errors"][0]["type"] == "validation"

    live_rt.dead_letters.replay(item["id"], now=live_rt.clock())
    run_due(live_rt)
    assert tag_calls(livechat) == ["order-status", "refund", "order-status"]
    assert sorted(livechat.chat(CHAT_ID)["thread"]["tags"]) == ["order-status", "refund"]
    assert len(live_rt.dead_letters) == 0 and jobs(live_rt, "retry") == []
