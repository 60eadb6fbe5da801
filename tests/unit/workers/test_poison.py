"""Poison messages RabbitMQ dead-lettered, moved into the dead-letter store (workers.poison)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import redis

from chathooks.queue_message import PROCESS_DELIVERY, RUN_JOB, TICK, task_body
from tests.unit.workers.conftest import delivery_of
from workers import poison
from workers.dispatch import REDISPATCH
from workers.scheduler import retry_job

DEATH = {"x-death": [{"reason": "delivery_limit", "count": 1}], "x-delivery-count": 3}


def body(*args):  # type: ignore[no-untyped-def]
    return task_body(list(args))


def test_a_poison_delivery_becomes_one_item_per_event_that_replays_every_handler(dry_rt):
    delivery = delivery_of("incoming_chat", dry_rt.settings)
    ids = poison.store(dry_rt, {"task": PROCESS_DELIVERY, **DEATH}, body(delivery.to_message()))
    items = [dry_rt.dead_letters.get(i) for i in ids]
    assert [i["event"]["key"] for i in items] == [e.key for e in delivery.events]
    assert {i["handler"] for i in items} == {REDISPATCH}
    (error,) = items[0]["errors"]
    assert error["type"] == "poison" and not error["transient"]
    assert f"more than {dry_rt.settings.amqp_delivery_limit} times" in error["message"]
    dry_rt.journal.flush()
    assert dry_rt.redis.hget(dry_rt.keys.metrics, "poisoned:livechat") == b"1"


def test_a_poison_retry_job_is_its_handler_with_its_earlier_errors(dry_rt):
    event = delivery_of("incoming_event", dry_rt.settings).events[0].to_dict()
    earlier = [{"type": "timeout", "message": "slow", "transient": True, "at": 1.0}]
    member = retry_job("tagging.match", event, 2, earlier, 0)
    dry_rt.scheduler.schedule(member, 0)
    (item_id,) = poison.store(dry_rt, {"task": RUN_JOB, **DEATH}, body(member, 0))
    item = dry_rt.dead_letters.get(item_id)
    assert item["handler"] == "tagging.match" and item["event"] == event
    assert [e["type"] for e in item["errors"]] == ["timeout", "poison"]
    assert dry_rt.redis.zcard(dry_rt.scheduler.key) == 0  # dead-lettered in place of the job


def test_a_poison_tick_is_dropped_and_so_is_what_is_no_task_of_ours(dry_rt):
    assert poison.store(dry_rt, {"task": TICK}, body()) == []
    assert poison.store(dry_rt, {"task": PROCESS_DELIVERY}, b"not json") == []
    assert len(dry_rt.dead_letters) == 0


@dataclass
class FakeChannel:
    """basic_get/basic_ack as py-amqp's channel has them, over lists of messages per queue."""

    queues: dict[str, list[SimpleNamespace]]
    acked: list[int] = field(default_factory=list)
    rejected: list[tuple[int, bool]] = field(default_factory=list)

    def basic_get(self, queue: str, no_ack: bool = False) -> SimpleNamespace | None:
        assert not no_ack
        return self.queues[queue].pop(0) if self.queues[queue] else None

    def basic_ack(self, tag: int) -> None:
        self.acked.append(tag)

    def basic_reject(self, tag: int, requeue: bool) -> None:
        self.rejected.append((tag, requeue))


def test_drain_moves_each_message_then_acknowledges_it(dry_rt):
    delivery = delivery_of("incoming_event", dry_rt.settings)
    message = SimpleNamespace(headers={"task": PROCESS_DELIVERY, **DEATH}, body=body(delivery.to_message()),
                              delivery_tag=7)
    tick = SimpleNamespace(headers={"task": TICK}, body=body(), delivery_tag=8)
    channel = FakeChannel({"events.dead": [message], "events.scheduled.dead": [tick]})
    assert poison.drain(dry_rt, channel, ("events.scheduled.dead", "events.dead")) == 2
    assert channel.acked == [8, 7] and len(dry_rt.dead_letters) == len(delivery.events)


def test_drain_drops_what_cannot_be_stored_and_gives_back_what_redis_could_not_take(dry_rt, monkeypatch):
    broken = SimpleNamespace(headers={"task": PROCESS_DELIVERY}, body=body({"events": "not a list"}), delivery_tag=1)
    channel = FakeChannel({"events.dead": [broken]})
    assert poison.drain(dry_rt, channel, ("events.dead",)) == 1
    assert channel.rejected == [(1, False)] and channel.acked == []

    def away(*_):  # type: ignore[no-untyped-def]
        raise redis.ConnectionError("restarting")

    delivery = delivery_of("incoming_event", dry_rt.settings)
    monkeypatch.setattr(dry_rt.dead_letters, "add", away)
    message = SimpleNamespace(headers={"task": PROCESS_DELIVERY}, body=body(delivery.to_message()), delivery_tag=2)
    channel = FakeChannel({"events.dead": [message]})
    with pytest.raises(redis.ConnectionError):
        poison.drain(dry_rt, channel, ("events.dead",))
    assert channel.rejected == [(2, True)]
