"""At-most-once side effects on an at-least-once queue.

A side effect is claimed under a key with a short lease before it runs and marked done
after. A rerun (duplicate delivery, redelivered task, replay) finds it done and skips it.
If the worker died holding the lease, the claim lapses and a later attempt may run it; a
failed attempt releases the claim at once so the retry is not held up.

A claim also leaves a marker that an attempt was made, removed only when the effect is
marked done. The next claim then knows an earlier attempt may have done the effect without
recording it (it crashed, timed out or lost the answer after the API acted), and asks the
caller's ``already`` check before repeating it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis

from chathooks.redis_client import PackedScript, Write

T = TypeVar("T")

DONE = b"done"

# KEYS: claim, attempt marker. ARGV: token, lease (ms), marker ttl (s), now.
# Returns 0 done, 1 claimed, 2 claimed after an unfinished attempt; nil when held elsewhere.
# The marker keeps the time the first attempt began (``attempted_at``).
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held == 'done' then return 0 end
if held then return nil end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local tried = redis.call('EXISTS', KEYS[2])
redis.call('SET', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[3])
return 1 + tried
"""

# Release only our own claim: a lapsed lease may already belong to another worker.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


Defer = Callable[[Write, Callable[[], None]], None]  # a write to go with the task's, and what to do once written


class Busy(Exception):
    """Another worker holds the claim right now; try again after its lease."""

    transient = True


class Once:
    def __init__(self, client: redis.Redis, prefix: str, lease_seconds: float = 60, done_ttl: int = 30 * 24 * 3600,
                 wait_ms: int = 0, defer: Defer | None = None):
        # With replicas (Sentinel), a claim and a done mark are on a replica before the effect runs and before
        # the task ends: a failover cannot forget an effect that was made.
        self._wait_ms = wait_ms
        # ``defer``: the done mark goes with the task's other writes (``Journal.lasting``: kept until written, even
        # if the task is cut short) instead of a round trip of its own. A process lost before it is written
        # leaves the claim to lapse and the attempt marker: the next attempt asks ``already``, as after any
        # attempt that did not record its end.
        self._defer = defer if not wait_ms else None
        self._unwritten: set[str] = set()  # done, the mark not written yet: done for this process meanwhile
        self._redis = client
        self._prefix = prefix
        self._lease_ms = int(lease_seconds * 1000)
        self._done_ttl = done_ttl
        self._claim = PackedScript(client, _CLAIM)
        self._release = client.register_script(_RELEASE)

    def key(self, name: str) -> str:
        return f"{self._prefix}once:{name}"

    def done(self, name: str) -> bool:
        key = self.key(name)
        return key in self._unwritten or self._redis.get(key) == DONE

    def attempted_at(self, name: str) -> float | None:
        """When the first unfinished attempt at ``name`` began (None: none is known)."""
        value = self._redis.get(f"{self.key(name)}:tried")
        try:
            return float(value) if value is not None else None
        except ValueError:  # a marker of the previous release: an attempt, time unknown
            return 0.0

    def run(self, name: str, effect: Callable[[], T], done_ttl: int | None = None, *,
            already: Callable[[], bool] | None = None) -> tuple[bool, T | None]:
        """Run ``effect`` unless already done; returns (ran, result). Raises Busy if claimed elsewhere.

        ``already`` is asked only when an earlier attempt may have done the effect unrecorded; when it
        says the effect is there, it is marked done instead of repeated.
        """
        key, marker, token = self.key(name), f"{self.key(name)}:tried", uuid.uuid4().hex
        if key in self._unwritten:
            return False, None
        ttl = done_ttl or self._done_ttl
        claimed, _ = self._claim([key, marker], [token, self._lease_ms, ttl, f"{time.time():.6f}"], self._wait_ms)
        if claimed is None:
            raise Busy(name)
        if claimed == 0:
            return False, None
        try:
            if claimed == 2 and already is not None and already():
                ran, result = False, None
            else:
                ran, result = True, effect()
        except BaseException:
            # Best effort: the effect's own exception (a worker's shutdown, say) must not be replaced by
            # Redis being down too; an unreleased claim still lapses with its lease.
            with contextlib.suppress(redis.RedisError):
                self._release(keys=[key], args=[token])
            raise
        def mark(pipe: redis.client.Pipeline) -> None:
            pipe.set(key, DONE, ex=ttl).delete(marker)

        if self._defer is not None:
            self._unwritten.add(key)
            self._defer(mark, lambda: self._unwritten.discard(key))
            return ran, result
        with self._redis.pipeline() as pipe:
            mark(pipe)
            if self._wait_ms:
                pipe.execute_command("WAIT", 1, self._wait_ms)
            pipe.execute()
        return ran, result
