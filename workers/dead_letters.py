"""The dead-letter store: work that failed for good, kept until an operator replays or purges it.

Items live in a hash (id → JSON) with an index of ids by the time each was dead-lettered (what
/metrics counts). They have no TTL. Replay moves an item back into the pipeline as a retry job in
the scheduler, due now, at attempt 1, in one Lua script: it survives a crash at any point and a
second replay of the same id finds nothing. That is atomic only because the store and the schedule
are in the same Redis database (both under REDIS_URL and the key prefix); split across databases,
it could not be.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from chathooks.keys import Keys
from workers.scheduler import Scheduler, retry_job

Item = dict[str, Any]

# Take an item out only if it is still the version the caller read (a concurrent replay, purge or
# re-dead-lettering is neither lost nor doubled), scheduling its retry job when there is one.
# KEYS: items, index, schedule. ARGV: id, the item as read, job member ('' for none), due.
_TAKE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3]) end
return 1
"""


@dataclass(frozen=True)
class Filter:
    """Which items an operator means; every criterion given must hold."""

    handler: str | None = None
    kind: str | None = None
    chat: str | None = None
    dead_before: float | None = None  # dead-lettered at or before this time
    organization: str | None = None
    parked: bool | None = None  # only work parked while its organization could not be acted for (or none of it)

    def __call__(self, item: Item) -> bool:
        event = item["event"]
        return ((self.handler is None or item["handler"] == self.handler)
                and (self.kind is None or event.get("kind") == self.kind)
                and (self.chat is None or event.get("chat_id") == self.chat)
                and (self.dead_before is None or item["dead_at"] <= self.dead_before)
                and (self.organization is None or event.get("organization") == self.organization)
                and (self.parked is None or is_parked(item) == self.parked))


def is_parked(item: Item) -> bool:
    """Whether the item waits for its organization (its last failure was the tenant's, not the work's)."""
    errors = item.get("errors") or [{}]
    return str(errors[-1].get("type", "")).startswith(PARKED_PREFIX)


PARKED_PREFIX = "tenant_"  # the error types of work whose organization cannot be acted for now


EVERYTHING = Filter()


class DeadLetters:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        keys = Keys(prefix)
        self.items = keys.dead_letter_items
        self.index = keys.dead_letters
        self._scheduler = Scheduler(client, prefix)
        self._take = client.register_script(_TAKE)

    @staticmethod
    def item_id(event_key: str, handler: str) -> str:
        return hashlib.blake2b(f"{handler}\x1f{event_key}".encode(), digest_size=8).hexdigest()

    def add(self, event: dict[str, Any], handler: str, errors: list[dict[str, Any]], replays: int = 0,
            job: str | None = None) -> str:
        """Store ``handler``'s failure on ``event``, one error per attempt (one item per event and handler).

        ``job`` is the scheduled job that failed: it is completed in the same transaction, so a crash
        can neither lose the work nor leave it both scheduled and dead-lettered.
        """
        item_id = self.item_id(event["key"], handler)
        now = time.time()
        item = {
            "id": item_id, "handler": handler, "event": event, "errors": errors, "attempts": len(errors),
            "first_failed_at": errors[0].get("at", now) if errors else now,
            "last_failed_at": errors[-1].get("at", now) if errors else now,
            "dead_at": now, "replays": replays,
        }
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.items, item_id, json.dumps(item, default=str))
            pipe.zadd(self.index, {item_id: now})
            if job is not None:
                pipe.zrem(self._scheduler.key, job)
            pipe.execute()
        return item_id

    def get(self, item_id: str) -> Item | None:
        raw = self._redis.hget(self.items, item_id)
        return json.loads(raw) if raw else None

    def list(self, match: Filter = EVERYTHING) -> list[Item]:
        """The matching items, oldest first."""
        ids = [i.decode() for i in self._redis.zrange(self.index, 0, -1)]
        raws = self._redis.hmget(self.items, ids) if ids else []
        return [item for item in (json.loads(r) for r in raws if r) if match(item)]

    def replay(self, item_id: str, match: Filter = EVERYTHING, now: float | None = None) -> Item | None:
        """Schedule the item's handler to run on its event again, due ``now``, and take it out of the store.

        The job starts at attempt 1 with no errors and counts one more replay; it runs when a worker
        does, through the same once-guards (side effects already done are skipped), and if it fails
        for good again the item comes back. Returns the item, or None if there is no such item (or it
        no longer matches).
        """
        def job(item: Item) -> str:
            return retry_job(item["handler"], item["event"], 1, [], item["replays"] + 1)

        return self._take_if(item_id, match, job, time.time() if now is None else now)

    def purge(self, item_id: str, match: Filter = EVERYTHING) -> Item | None:
        """Delete the item; returns it, or None if there is no such item (or it no longer matches)."""
        return self._take_if(item_id, match, lambda item: "", 0.0)

    def __len__(self) -> int:
        return int(self._redis.zcard(self.index))

    def _take_if(self, item_id: str, match: Filter, job: Callable[[Item], str], due: float) -> Item | None:
        while True:
            raw = self._redis.hget(self.items, item_id)
            if raw is None:
                return None
            item = json.loads(raw)
            if not match(item):
                return None
            if self._take(keys=[self.items, self.index, self._scheduler.key], args=[item_id, raw, job(item), due]):
                return item
            # Re-dead-lettered since it was read: look again.
