"""Durable, deduplicated enqueue of deliveries for the Celery workers.

When the broker is the pipeline's Redis, one Lua call claims the delivery's dedupe key,
pushes a Celery protocol-2 message onto the queue list (what kombu's Redis transport does
for ``apply_async``) and counts it: one round trip, and a delivery is either queued and
marked seen, or neither. With another broker (e.g. RabbitMQ) the dedupe key is claimed first
and released again if publishing fails, so a failed publish never turns the retry away.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import redis

from chathooks.broker import Broker
from chathooks.events import Delivery
from chathooks.keys import Keys
from chathooks.metrics import Metrics
from chathooks.redis_client import replicated
from chathooks.queue_message import PROCESS_DELIVERY, celery_message, delivery_repr
from chathooks.settings import Settings

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """Redis or the broker could not take the delivery; nothing was queued."""


class Enqueuer(Protocol):
    def enqueue(self, delivery: Delivery) -> bool:
        """Queue ``delivery`` once: True if queued now, False if it was seen before."""


# A duplicate counted, and told in the story of a chat the workers know: its entry is built here, so a delivery
# queued pays nothing for it (see workers.journal). The "no chat" timeline key is the script's sentinel key.
_DUPLICATE = """
redis.call('HINCRBY', {metrics}, 'duplicate:' .. {source}, 1)
if {timeline} ~= {sentinel} and redis.call('EXISTS', {timeline}) == 1 then
  redis.call('ZADD', {timeline}, {at}, cjson.encode({{type = 'delivery', outcome = 'duplicate', id = {id},
                                                    source = {source}, action = {action}, received = {at}}}))
end
"""

# KEYS: dedupe, queue, metrics, the chat's timeline (the dedupe key when there is no chat). ARGV: ttl, message,
# source, received at, delivery id, action.
_ENQUEUE_LUA = """
redis.call('HINCRBY', KEYS[3], 'received:' .. ARGV[3], 1)
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[3], 'queued:' .. ARGV[3], 1)
  return 1
end
""" + _DUPLICATE.format(metrics="KEYS[3]", timeline="KEYS[4]", sentinel="KEYS[1]", source="ARGV[3]", at="ARGV[4]",
                        id="ARGV[5]", action="ARGV[6]") + "return 0\n"

# KEYS: metrics, the chat's timeline (the metrics key when there is no chat). ARGV: source, received at, delivery
# id, action.
_DUPLICATE_LUA = "redis.call('HINCRBY', KEYS[1], 'received:' .. ARGV[1], 1)\n" + _DUPLICATE.format(
    metrics="KEYS[1]", timeline="KEYS[2]", sentinel="KEYS[1]", source="ARGV[1]", at="ARGV[2]", id="ARGV[3]",
    action="ARGV[4]")


def _timeline(keys: Keys, delivery: Delivery, no_chat: str) -> str:
    return keys.timeline(delivery.chat_id) if delivery.chat_id else no_chat


class RedisEnqueuer:
    """Broker and state share one Redis: dedupe, push and count in one atomic script.

    With ``wait_ms`` (replicas behind Sentinel) the script is followed, in the same round trip, by
    ``WAIT 1``: the answer then means a replica has the delivery too, so a failover right after it
    cannot lose it. A delivery no replica confirmed in time is still queued on the master, and counted
    (``unreplicated``), so what a failover could lose is seen, never silent.
    """

    def __init__(self, client: redis.Redis, keys: Keys, queue: str, wait_ms: int = 0) -> None:
        self._redis = client
        self._script = client.register_script(_ENQUEUE_LUA)
        self._keys = keys
        self._queue = queue
        self._wait_ms = wait_ms

    def enqueue(self, delivery: Delivery) -> bool:
        message = celery_message(PROCESS_DELIVERY, [delivery.to_message()], self._queue,
                                 argsrepr=delivery_repr(delivery))
        dedupe = self._keys.dedupe(delivery.id)
        keys = [dedupe, self._queue, self._keys.metrics, _timeline(self._keys, delivery, dedupe)]
        args = [delivery.dedupe_ttl, message, delivery.source, f"{delivery.received_at:.6f}", delivery.id,
                delivery.action]
        try:
            if not self._wait_ms:
                return bool(self._script(keys=keys, args=args))
            return self._enqueue_replicated(keys, args, delivery.source)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc

    def _enqueue_replicated(self, keys: list[str], args: list[object], source: str) -> bool:
        queued, replicas = replicated(self._redis, self._script, keys, args, self._wait_ms)
        if queued and not replicas:
            log.warning("a delivery was queued but no replica had it within %d ms", self._wait_ms)
            with contextlib.suppress(redis.RedisError):
                self._redis.hincrby(self._keys.metrics, f"unreplicated:{source}", 1)
        return bool(queued)


class PublishingEnqueuer:
    """Broker elsewhere: claim the dedupe key, publish, and release the key if publishing fails."""

    def __init__(self, client: redis.Redis, keys: Keys, metrics: Metrics, publish: Callable[[Delivery], None]) -> None:
        self._redis = client
        self._keys = keys
        self._metrics = metrics
        self._publish = publish
        self._duplicate = client.register_script(_DUPLICATE_LUA)

    def enqueue(self, delivery: Delivery) -> bool:
        key = self._keys.dedupe(delivery.id)
        try:
            claimed = self._redis.set(key, "1", nx=True, ex=delivery.dedupe_ttl)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        if not claimed:
            metrics = self._keys.metrics
            try:
                self._duplicate(keys=[metrics, _timeline(self._keys, delivery, metrics)],
                                args=[delivery.source, f"{delivery.received_at:.6f}", delivery.id, delivery.action])
            except redis.RedisError as exc:  # the answer stands: it was seen before
                log.warning("duplicate %s not counted: %s", delivery.id, exc)
            return False
        try:
            self._publish(delivery)
        except Exception as exc:  # any broker failure: LiveChat's retry must be able to try again
            with contextlib.suppress(redis.RedisError):
                self._redis.delete(key)
            raise QueueUnavailable(f"publish failed: {type(exc).__name__}") from exc
        self._metrics.count(f"received:{delivery.source}", f"queued:{delivery.source}")
        return True


def make_enqueuer(settings: Settings, client: redis.Redis, keys: Keys, metrics: Metrics, broker: Broker) -> Enqueuer:
    """One atomic script when the broker is the state Redis; claim-publish-release otherwise."""
    if settings.broker_shares_state_redis:
        return RedisEnqueuer(client, keys, settings.queue, settings.redis_wait_ms)
    return PublishingEnqueuer(client, keys, metrics, broker.publish)
