"""Enqueue with RabbitMQ as the broker: a pending claim, the confirmed publish, then confirm or release."""

from __future__ import annotations

import json
import threading

import fakeredis
import pytest

from chathooks.keys import Keys
from chathooks.metrics import Metrics
from chathooks.platforms.livechat.adapter import load_envelope, to_delivery
from chathooks.queue import PublishingEnqueuer, QueueUnavailable
from tests.helpers import fixture

CHAT = "RX8QK2MZ1A"
PENDING_TTL = 15


@pytest.fixture
def delivery(settings):
    return to_delivery(load_envelope(fixture("incoming_event")), settings, received_at=1756720800.0)


@pytest.fixture
def keys(settings):
    return Keys(settings.key_prefix)


def enqueuer(fake_redis, keys, publish, patience=0.05):
    return PublishingEnqueuer(fake_redis, keys, publish, PENDING_TTL, patience)


def test_a_delivery_is_published_once_and_its_repeat_told_in_the_chat_s_story(fake_redis, keys, delivery):
    published: list = []
    queue = enqueuer(fake_redis, keys, published.append)
    assert queue.enqueue(delivery) is True
    fake_redis.zadd(keys.timeline(CHAT), {"{}": 1.0})  # the workers know the chat
    assert queue.enqueue(delivery) is False
    assert published == [delivery]
    (told,) = [json.loads(m) for m in fake_redis.zrange(keys.timeline(CHAT), 0, -1) if m != b"{}"]
    assert (told["type"], told["outcome"], told["id"], told["action"]) == (
        "delivery", "duplicate", delivery.id, "incoming_event")
    counters = Metrics(fake_redis, keys).snapshot()
    assert (counters["received:livechat"], counters["queued:livechat"], counters["duplicate:livechat"]) == (2, 1, 1)


def test_a_confirmed_publish_leaves_a_dedupe_key_for_the_full_ttl(fake_redis, keys, delivery):
    enqueuer(fake_redis, keys, lambda d: None).enqueue(delivery)
    key = keys.dedupe(delivery.id)
    assert fake_redis.get(key) == b"1" and fake_redis.ttl(key) > PENDING_TTL


@pytest.mark.parametrize(("outcome", "then", "queued"), [("confirmed", b"1", False), ("released", None, True)])
def test_a_retry_that_finds_the_claim_pending_waits_for_the_publish_to_end(fake_redis, keys, delivery, outcome, then,
                                                                          queued):
    key = keys.dedupe(delivery.id)
    fake_redis.set(key, "pending:another-request", ex=PENDING_TTL)
    timer = threading.Timer(0.05, lambda: fake_redis.set(key, then) if then else fake_redis.delete(key))
    timer.start()
    published: list = []
    assert enqueuer(fake_redis, keys, published.append, patience=5).enqueue(delivery) is queued
    timer.join()
    assert published == ([delivery] if queued else [])
    assert Metrics(fake_redis, keys).snapshot()["received:livechat"] == 1  # asked again, counted once


def test_the_claim_is_pending_while_the_publish_waits_and_a_retry_then_is_a_503_not_a_duplicate(
        fake_redis, keys, delivery):
    seen: list = []

    def publish(d):
        key = keys.dedupe(delivery.id)
        seen.append((fake_redis.get(key).decode().split(":")[0], fake_redis.ttl(key)))
        with pytest.raises(QueueUnavailable, match="still being queued by another request"):
            enqueuer(fake_redis, keys, lambda d: None).enqueue(delivery)  # LiveChat's retry, meanwhile

    assert enqueuer(fake_redis, keys, publish).enqueue(delivery) is True
    assert seen == [("pending", PENDING_TTL)]


def test_a_failed_publish_releases_the_claim_so_the_retry_is_queued(fake_redis, keys, delivery):
    def broken(_):
        raise ConnectionError("broker down")

    with pytest.raises(QueueUnavailable, match="ConnectionError"):
        enqueuer(fake_redis, keys, broken).enqueue(delivery)
    assert fake_redis.get(keys.dedupe(delivery.id)) is None
    published: list = []
    assert enqueuer(fake_redis, keys, published.append).enqueue(delivery) is True and published == [delivery]


def test_a_process_that_died_mid_publish_holds_the_delivery_only_for_the_pending_ttl(fake_redis, keys, delivery):
    class Died(BaseException):
        """The process ending between claim and publish: nothing after it runs."""

    def die(_):
        raise Died

    with pytest.raises(Died):
        enqueuer(fake_redis, keys, die).enqueue(delivery)
    assert 0 < fake_redis.ttl(keys.dedupe(delivery.id)) <= PENDING_TTL  # the retry meanwhile: a 503
    fake_redis.delete(keys.dedupe(delivery.id))  # the pending TTL lapsed
    published: list = []
    assert enqueuer(fake_redis, keys, published.append).enqueue(delivery) is True and published == [delivery]


def test_a_release_never_drops_a_claim_another_request_took_over(fake_redis, keys, delivery):
    key = keys.dedupe(delivery.id)

    def lapsed_then_broken(_):
        fake_redis.set(key, "pending:someone-else", ex=PENDING_TTL)  # ours lapsed; a retry claimed it
        raise ConnectionError("broker down")

    with pytest.raises(QueueUnavailable):
        enqueuer(fake_redis, keys, lapsed_then_broken).enqueue(delivery)
    assert fake_redis.get(key) == b"pending:someone-else"


def test_a_worker_that_processed_it_before_the_confirm_keeps_its_mark_for_the_full_ttl(fake_redis, keys, delivery):
    key = keys.dedupe(delivery.id)

    def processed_at_once(_):
        fake_redis.set(key, "processed", keepttl=True)  # what the worker's journal does

    enqueuer(fake_redis, keys, processed_at_once).enqueue(delivery)
    assert fake_redis.get(key) == b"processed" and fake_redis.ttl(key) > PENDING_TTL


def test_redis_away_at_the_claim_is_unavailable_and_nothing_is_published(keys, delivery):
    server = fakeredis.FakeServer()
    server.connected = False
    published: list = []
    with pytest.raises(QueueUnavailable):
        enqueuer(fakeredis.FakeRedis(server=server), keys, published.append).enqueue(delivery)
    assert published == []


def test_reads_before_a_publishing_enqueue_are_answered_then_it_is_queued(fake_redis, keys, delivery):
    published: list = []
    fake_redis.hset("profile", "chats", "2")
    replies, queued = enqueuer(fake_redis, keys, published.append).enqueue_after([("HGETALL", "profile")], delivery)
    assert (replies, queued, published) == ([[b"chats", b"2"]], True, [delivery])


def test_reads_that_cannot_reach_redis_before_a_publishing_enqueue_queue_nothing(keys, delivery):
    server = fakeredis.FakeServer()
    server.connected = False
    published: list = []
    with pytest.raises(QueueUnavailable):
        enqueuer(fakeredis.FakeRedis(server=server), keys, published.append).enqueue_after([("GET", "x")], delivery)
    assert published == []
