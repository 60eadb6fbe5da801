"""Durable, deduplicated enqueue of deliveries for the Celery workers.

When the broker is the pipeline's Redis, one Lua call claims the delivery's dedupe key,
pushes a Celery protocol-2 message onto the queue list (what kombu's Redis transport does
for ``apply_async``) and counts it: one round trip, and a delivery is either queued and
marked seen, or neither. With RabbitMQ the dedupe key is claimed as pending, the message
published with confirms, and the claim then confirmed, or released if publishing failed: a
failed publish never turns the retry away.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis

from chathooks.broker import Broker
from chathooks.events import Delivery
from chathooks.keys import Keys
from chathooks.redis_client import PackedScript, read
from chathooks.queue_message import delivery_message
from chathooks.settings import Settings

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """Redis or the broker could not take the delivery; nothing was queued."""


class Enqueuer(Protocol):
    def enqueue(self, delivery: Delivery) -> bool:
        """Queue ``delivery`` once: True if queued now, False if it was seen before."""

    def enqueue_after(self, reads: Sequence[Sequence[Any]], delivery: Delivery) -> tuple[list[Any], bool]:
        """Run the read-only commands ``reads``, then ``enqueue``: their replies as the server sent them (an error
        reply returned, not raised: the delivery is queued all the same), and whether it was queued now."""


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
        self._script = PackedScript(client, _ENQUEUE_LUA)
        self._keys = keys
        self._queue = queue
        self._wait_ms = wait_ms

    def enqueue(self, delivery: Delivery) -> bool:
        return self.enqueue_after((), delivery)[1]

    def enqueue_after(self, reads: Sequence[Sequence[Any]], delivery: Delivery) -> tuple[list[Any], bool]:
        """In the enqueue's own round trip."""
        message = delivery_message(delivery, self._queue)
        dedupe = self._keys.dedupe(delivery.id)
        keys = [dedupe, self._queue, self._keys.metrics, _timeline(self._keys, delivery, dedupe)]
        args = [delivery.dedupe_ttl, message, delivery.source, f"{delivery.received_at:.6f}", delivery.id,
                delivery.action]
        try:
            replies, queued, replicas = self._script.after(reads, keys, args, self._wait_ms)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        if queued and replicas == 0:
            log.warning("a delivery was queued but no replica had it within %d ms", self._wait_ms)
            with contextlib.suppress(redis.RedisError):
                self._redis.hincrby(self._keys.metrics, f"unreplicated:{delivery.source}", 1)
        return replies, bool(queued)


# The dedupe claim of a delivery being published elsewhere (RabbitMQ): pending until its publish is confirmed.
# KEYS: dedupe, metrics, the chat's timeline (the dedupe key when there is no chat). ARGV: pending TTL, pending
# value, source, received at, delivery id, action. Returns 1 claimed, -1 pending elsewhere (not counted: the
# caller asks again), 0 a duplicate.
_CLAIM_LUA = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 8) == 'pending:' then return -1 end
redis.call('HINCRBY', KEYS[2], 'received:' .. ARGV[3], 1)
if not held then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[1])
  return 1
end
""" + _DUPLICATE.format(metrics="KEYS[2]", timeline="KEYS[3]", sentinel="KEYS[1]", source="ARGV[3]", at="ARGV[4]",
                        id="ARGV[5]", action="ARGV[6]") + "return 0\n"

_PENDING_POLL = 0.01  # seconds between looks at a claim another request holds pending

# The publish confirmed: the claim becomes a plain dedupe key for its full TTL (a worker quick enough to have
# processed it already keeps its mark), and the delivery is counted queued.
# KEYS: dedupe, metrics. ARGV: pending value, TTL, source.
_CONFIRMED_LUA = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
elseif held == 'processed' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
redis.call('HINCRBY', KEYS[2], 'queued:' .. ARGV[3], 1)
"""

# The publish failed: release the claim if it is still ours. KEYS: dedupe. ARGV: pending value.
_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class PublishingEnqueuer:
    """Broker elsewhere (RabbitMQ): claim the dedupe key as pending, publish, then confirm or release it.

    A claim stays pending only until the publish is confirmed (or, if this process dies between the two,
    for ``pending_ttl``). The same delivery arriving meanwhile (a sender's quick retry, a second web
    process) waits up to ``patience`` for that publish to end: confirmed, it is a duplicate; released, it
    claims the delivery itself; still pending, it is a 503, to come back, never "duplicate". So a
    delivery whose publish failed, or whose process died mid-publish, is never turned away for good.
    """

    def __init__(self, client: redis.Redis, keys: Keys, publish: Callable[[Delivery], None],
                 pending_ttl: int, patience: float) -> None:
        self._redis = client
        self._keys = keys
        self._publish = publish
        self._pending_ttl = pending_ttl
        self._patience = patience
        self._claim = client.register_script(_CLAIM_LUA)
        self._confirmed = client.register_script(_CONFIRMED_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def enqueue_after(self, reads: Sequence[Sequence[Any]], delivery: Delivery) -> tuple[list[Any], bool]:
        """The reads in a round trip of their own, before the claim."""
        try:
            replies = read(self._redis, reads)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return replies, self.enqueue(delivery)

    def enqueue(self, delivery: Delivery) -> bool:
        key = self._keys.dedupe(delivery.id)
        pending = f"pending:{uuid.uuid4().hex}"
        keys = [key, self._keys.metrics, _timeline(self._keys, delivery, key)]
        args = [self._pending_ttl, pending, delivery.source, f"{delivery.received_at:.6f}", delivery.id,
                delivery.action]
        give_up = time.monotonic() + self._patience
        try:
            while (claimed := self._claim(keys=keys, args=args)) == -1:
                if time.monotonic() >= give_up:
                    self._redis.hincrby(self._keys.metrics, f"received:{delivery.source}", 1)
                    raise QueueUnavailable("the same delivery is still being queued by another request")
                time.sleep(_PENDING_POLL)
        except redis.RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        if claimed == 0:
            return False
        try:
            self._publish(delivery)
        except Exception as exc:  # any broker failure: the sender's retry must be able to try again
            with contextlib.suppress(redis.RedisError):
                self._release(keys=[key], args=[pending])
            raise QueueUnavailable(f"publish failed: {type(exc).__name__}: {exc}") from exc
        try:
            self._confirmed(keys=[key, self._keys.metrics], args=[pending, delivery.dedupe_ttl, delivery.source])
        except redis.RedisError as exc:  # queued all the same; a retry after the pending TTL is a duplicate task
            log.warning("delivery %s queued, but its claim not confirmed: %s", delivery.id, exc)
        return True


def make_enqueuer(settings: Settings, client: redis.Redis, keys: Keys, broker: Broker) -> Enqueuer:
    """One atomic script when the broker is the state Redis; claim, publish, confirm or release otherwise."""
    if settings.broker_shares_state_redis:
        return RedisEnqueuer(client, keys, settings.queue, settings.redis_wait_ms)
    # Most publishes end well within two publish timeouts; one still pending then is a 503, for a retry later.
    return PublishingEnqueuer(client, keys, broker.publish, settings.pending_claim_seconds,
                              patience=2 * settings.publish_timeout_seconds)
