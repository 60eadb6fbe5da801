"""The dead-letter store: work that failed for good, with its event, handler and every error."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import redis


class DeadLetters:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self.items = f"{prefix}dlq:items"
        self.index = f"{prefix}dlq:index"  # id → time dead-lettered (what /metrics counts)

    @staticmethod
    def item_id(event_key: str, handler: str) -> str:
        return hashlib.blake2b(f"{handler}\x1f{event_key}".encode(), digest_size=8).hexdigest()

    def add(self, event: dict[str, Any], handler: str, errors: list[dict[str, Any]]) -> str:
        item_id = self.item_id(event["key"], handler)
        now = time.time()
        item = {"id": item_id, "handler": handler, "event": event, "errors": errors, "dead_at": now}
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.items, item_id, json.dumps(item, default=str))
            pipe.zadd(self.index, {item_id: now})
            pipe.execute()
        return item_id

    def get(self, item_id: str) -> dict[str, Any] | None:
        raw = self._redis.hget(self.items, item_id)
        return json.loads(raw) if raw else None

    def list(self) -> list[dict[str, Any]]:
        ids = [i.decode() for i in self._redis.zrange(self.index, 0, -1)]
        raws = self._redis.hmget(self.items, ids) if ids else []
        return [json.loads(r) for r in raws if r]

    def remove(self, item_id: str) -> None:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.items, item_id)
            pipe.zrem(self.index, item_id)
            pipe.execute()

    def __len__(self) -> int:
        return int(self._redis.zcard(self.index))
