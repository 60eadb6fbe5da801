"""Redis round trips per delivery, per handler: counted on the client, held to a budget so they cannot creep
back. A round trip is one command sent on its own, or one pipeline (or transaction) executed with commands
in it; a script is one (its first call loads it: the conversation is delivered once to warm them up)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from chathooks.redis_client import PackedScript
from tests.unit.workers.conftest import delivery_of
from workers import dispatch
from workers.dispatch import REGISTRY, handle_delivery

# A chat from its start to its rating, as LiveChat delivers it (dry-run: no outbound calls).
CONVERSATION = ("routing_status_set", "incoming_chat", "user_added_to_chat", "incoming_event",
                "incoming_event.agent_message", "incoming_event.bot_message", "thread_tagged", "chat_deactivated",
                "incoming_event.rating", "thread_properties_updated.good")

# Round trips for the whole conversation, by handler; "task" is what the task itself adds (its one flush).
BUDGET = {
    "people.remember_users": 2,
    "people.routing_status": 1,
    "people.end_thread": 1,
    "timeline.record": 0,  # written with the task's flush
    "tagging.match": 3,  # the role: read with the triggers' state; whether the thread ended: with the tags
    "tagging.tagged": 1,  # the profile's tag: with the task's flush
    "tagging.thread_ended": 5,
    "marketing.sync": 1,  # subscribed: written with the task
    "triggers.observe": 10,
    "rating.react": 4,
    "profile.seen": 5,
    "profile.rated": 2,
    "task": 10,  # one flush per delivery: the story, the counters, the processed mark
}


class RoundTrips:
    """Counts round trips on every redis-py client (fakeredis included) while installed."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        command, execute, packed = redis.Redis.execute_command, redis.client.Pipeline.execute, PackedScript.__call__

        def counted_command(client, *args, **options):  # type: ignore[no-untyped-def]
            self.count += 1
            return command(client, *args, **options)

        def counted_execute(pipe, *args, **options):  # type: ignore[no-untyped-def]
            self.count += bool(pipe.command_stack)  # an empty pipeline sends nothing
            return execute(pipe, *args, **options)

        def counted_script(script, *args, **options):  # type: ignore[no-untyped-def]
            self.count += 1
            return packed(script, *args, **options)

        monkeypatch.setattr(redis.Redis, "execute_command", counted_command)
        monkeypatch.setattr(PackedScript, "__call__", counted_script)
        monkeypatch.setattr(redis.client.Pipeline, "execute", counted_execute)


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    counter = RoundTrips()
    counter.install(monkeypatch)
    yield counter


def by_handler(rt, trips: RoundTrips, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> Counter[str]:  # type: ignore[no-untyped-def]
    """Deliver ``names`` one by one; each handler's round trips, and the tasks' own under "task"."""
    spent: Counter[str] = Counter()
    for name, handler in list(REGISTRY.items()):
        def timed(event, rt, _handler=handler, _name=name):  # type: ignore[no-untyped-def]
            before = trips.count
            try:
                return _handler(event, rt)
            finally:
                spent[_name] += trips.count - before
        monkeypatch.setitem(dispatch.REGISTRY, name, timed)
    for name in names:
        delivery = delivery_of(name, rt.settings)
        if delivery is None:
            continue
        before = trips.count
        handled = sum(spent.values())
        handle_delivery(delivery.to_message(), rt)
        spent["task"] += (trips.count - before) - (sum(spent.values()) - handled)
    return spent


def test_a_conversation_stays_within_its_round_trip_budget(dry_rt, trips, monkeypatch):
    by_handler(dry_rt, trips, monkeypatch, CONVERSATION)  # scripts loaded, state warm: what every chat pays after
    dry_rt.redis.flushdb()
    spent = by_handler(dry_rt, trips, monkeypatch, CONVERSATION)
    print("\nround trips by handler:", dict(sorted(spent.items())), "total", sum(spent.values()))
    over = {name: (n, BUDGET.get(name, 0)) for name, n in spent.items() if n > BUDGET.get(name, 0)}
    assert not over, f"over budget (spent, budget): {over}"
    assert sum(spent.values()) <= sum(BUDGET.values())
