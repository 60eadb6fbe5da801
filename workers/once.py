"""At-most-once side effects on an at-least-once queue.

A side effect is claimed under a key with a short lease before it runs and marked done
after. A rerun (duplicate delivery, redelivered task, replay) finds it done and skips it.
If the worker died holding the lease, the claim lapses and a later attempt may run it; a
failed attempt releases the claim at once so the retry is not held up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import redis

T = TypeVar("T")

DONE = b"done"

# Release only our own claim: a lapsed lease may already belong to another worker.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Busy(Exception):
    """Another worker holds the claim right now; try again after its lease."""

    transient = True


class Once:
    def __init__(self, client: redis.Redis, prefix: str, lease_seconds: int = 60, done_ttl: int = 30 * 24 * 3600):
        self._redis = client
        self._prefix = prefix
        self._lease = lease_seconds
        self._done_ttl = done_ttl
        self._release = client.register_script(_RELEASE)

    def key(self, name: str) -> str:
        return f"{self._prefix}once:{name}"

    def done(self, name: str) -> bool:
        return self._redis.get(self.key(name)) == DONE

    def run(self, name: str, effect: Callable[[], T], done_ttl: int | None = None) -> tuple[bool, T | None]:
        """Run ``effect`` unless already done; returns (ran, result). Raises Busy if claimed elsewhere."""
        key, token = self.key(name), uuid.uuid4().hex
        if not self._redis.set(key, token, nx=True, ex=self._lease):
            if self._redis.get(key) == DONE:
                return False, None
            raise Busy(name)
        try:
            result = effect()
        except BaseException:
            self._release(keys=[key], args=[token])
            raise
        self._redis.set(key, DONE, ex=done_ttl or self._done_ttl)
        return True, result
