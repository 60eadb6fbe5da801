"""Enqueue with a broker other than the state Redis: claim, publish, release on failure; duplicates told."""

from __future__ import annotations

import json

import pytest

from chathooks.keys import Keys
from chathooks.metrics import Metrics
from chathooks.platforms.livechat.adapter import load_envelope, to_delivery
from chathooks.queue import PublishingEnqueuer, QueueUnavailable
from tests.helpers import fixture

CHAT = "RX8QK2MZ1A"


@pytest.fixture
def delivery(settings):
    return to_delivery(load_envelope(fixture("incoming_event")), settings, received_at=1756720800.0)


def enqueuer(fake_redis, settings, published):
    keys = Keys(settings.key_prefix)
    return PublishingEnqueuer(fake_redis, keys, Metrics(fake_redis, keys), published.append), keys


def test_a_delivery_is_published_once_and_its_repeat_told_in_the_chat_s_story(fake_redis, settings, delivery):
    published: list = []
    queue, keys = enqueuer(fake_redis, settings, published)
    assert queue.enqueue(delivery) is True
    fake_redis.zadd(keys.timeline(CHAT), {"{}": 1.0})  # the workers know the chat
    assert queue.enqueue(delivery) is False
    assert published == [delivery]
    (told,) = [json.loads(m) for m in fake_redis.zrange(keys.timeline(CHAT), 0, -1) if m != b"{}"]
    assert (told["type"], told["outcome"], told["id"], told["action"]) == (
        "delivery", "duplicate", delivery.id, "incoming_event")
    counters = Metrics(fake_redis, keys).snapshot()
    assert (counters["received:livechat"], counters["queued:livechat"], counters["duplicate:livechat"]) == (2, 1, 1)


def test_a_failed_publish_releases_the_claim_so_the_retry_is_queued(fake_redis, settings, delivery):
    def broken(_):
        raise ConnectionError("broker down")

    keys = Keys(settings.key_prefix)
    with pytest.raises(QueueUnavailable):
        PublishingEnqueuer(fake_redis, keys, Metrics(fake_redis, keys), broken).enqueue(delivery)
    published: list = []
    assert enqueuer(fake_redis, settings, published)[0].enqueue(delivery) is True and published == [delivery]
