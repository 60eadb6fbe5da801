"""The dead-letter store."""

from __future__ import annotations

import pytest

from workers.dead_letters import DeadLetters

EVENT = {"key": "livechat:C:T:ended", "source": "livechat", "kind": "chat_ended", "chat_id": "C", "thread_id": "T"}
ERRORS = [{"type": "internal", "transient": True}, {"type": "validation", "transient": False}]


@pytest.fixture
def dlq(settings, fake_redis) -> DeadLetters:
    return DeadLetters(fake_redis, settings.key_prefix)


def test_an_item_keeps_event_handler_and_every_error(dlq):
    item_id = dlq.add(EVENT, "tagging.thread_ended", ERRORS)
    item = dlq.get(item_id)
    assert item["id"] == item_id
    assert item["event"] == EVENT
    assert item["handler"] == "tagging.thread_ended"
    assert item["errors"] == ERRORS
    assert isinstance(item["dead_at"], float)
    assert len(dlq) == 1
    assert dlq.list() == [item]


def test_the_same_event_and_handler_is_one_item_with_the_latest_errors(dlq):
    first = dlq.add(EVENT, "tagging.thread_ended", ERRORS[:1])
    second = dlq.add(EVENT, "tagging.thread_ended", ERRORS)
    assert first == second
    assert len(dlq) == 1
    assert dlq.get(first)["errors"] == ERRORS


def test_different_handlers_of_one_event_are_separate_items(dlq):
    a = dlq.add(EVENT, "tagging.thread_ended", ERRORS)
    b = dlq.add(EVENT, "silence.thread_ended", ERRORS)
    assert a != b
    assert {i["handler"] for i in dlq.list()} == {"tagging.thread_ended", "silence.thread_ended"}


def test_list_is_oldest_first(dlq):
    ids = [dlq.add({**EVENT, "key": f"k{n}"}, "h", ERRORS) for n in range(3)]
    assert [i["id"] for i in dlq.list()] == ids


def test_remove(dlq):
    item_id = dlq.add(EVENT, "h", ERRORS)
    dlq.remove(item_id)
    assert dlq.get(item_id) is None
    assert len(dlq) == 0
    assert dlq.list() == []


def test_empty_store(dlq):
    assert len(dlq) == 0 and dlq.list() == [] and dlq.get("nope") is None


def test_the_index_is_the_key_metrics_count(dlq, settings):
    from chathooks.keys import Keys

    assert dlq.index == Keys(settings.key_prefix).dead_letters
