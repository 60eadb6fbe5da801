"""Delayed work without Celery ETAs: a Redis sorted set of jobs by due time, pumped by beat.

Beat sends ``chathooks.tick`` every second. A tick claims the due jobs by pushing their score
one lease into the future (not by removing them) and queues each; a job is removed only
when it completes. So a tick, a queue message or a worker lost at any point only delays a
job by one lease — jobs are idempotent — and no message ever waits on the broker longer
than the visibility timeout.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from chathooks.keys import Keys

LEASE_SECONDS = 30

_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], due[i])
end
return due
"""


def job(kind: str, *parts: str) -> str:
    """A job is its own name (``kind|part|…``), so scheduling the same job twice keeps one."""
    return "|".join((kind, *parts))


def retry_job(handler: str, event: dict[str, Any], attempt: int, errors: list[dict[str, Any]],
              replays: int = 0) -> str:
    """The job that runs ``handler`` on ``event`` (a dict) again as ``attempt``.

    ``errors`` are the earlier attempts', ``replays`` how often an operator replayed it from the
    dead-letter store. The payload is canonical JSON, so the same retry scheduled twice is one job.
    """
    payload = {"handler": handler, "event": event, "attempt": attempt, "errors": errors, "replays": replays}
    return job("retry", json.dumps(payload, sort_keys=True, separators=(",", ":")))


def retry_payload(member: str) -> dict[str, Any]:
    """The payload of a ``retry_job`` (jobs scheduled before replays were counted have none: 0)."""
    return {"replays": 0, **json.loads(member.partition("|")[2])}


def parse(member: str) -> tuple[str, list[str]]:
    kind, _, rest = member.partition("|")
    return kind, ([rest] if kind == "retry" else rest.split("|"))


@dataclass(frozen=True)
class Described:
    """What a job is about: its kind, its chat, and what else its name tells (never a retry's whole event)."""

    kind: str
    chat_id: str | None
    detail: dict[str, Any]


def describe(member: str) -> Described:
    """Read a job's name: ``trigger|chat|thread|due`` and ``fire|source|org|chat|thread|trigger|window``
    (``workers.handlers.triggers``), ``nudge|chat|thread|start`` (the previous release's), ``retry|payload``."""
    kind, parts = parse(member)
    if kind == "retry":
        payload = retry_payload(member)
        event = payload["event"]
        return Described(kind, event.get("chat_id"),
                         {"handler": payload["handler"], "attempt": payload["attempt"], "source": event.get("source")})
    if kind == "fire":
        return Described(kind, parts[2], {"source": parts[0], "trigger": parts[4]})
    return Described(kind, parts[0], {"thread_id": parts[1]})


class Scheduler:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self.key = Keys(prefix).schedule
        self._claim = client.register_script(_CLAIM_DUE)

    def schedule(self, member: str, due: float, replacing: str | None = None) -> None:
        """Add ``member`` (or move it) to ``due``; the job it is ``replacing`` goes in the same transaction."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {member: due})
            if replacing not in (None, member):
                pipe.zrem(self.key, replacing)
            pipe.execute()

    def complete(self, member: str, pipe: redis.client.Pipeline | None = None) -> None:
        """Remove a job that has run (on ``pipe``, to go with other writes, when given)."""
        (pipe if pipe is not None else self._redis).zrem(self.key, member)

    def claim_due(self, now: float | None = None, limit: int = 500) -> list[tuple[str, float]]:
        """The jobs due by ``now``, each with its due time, leased for ``LEASE_SECONDS``."""
        now = time.time() if now is None else now
        found = self._claim(keys=[self.key], args=[now, now + LEASE_SECONDS, limit])
        return [(found[i].decode(), float(found[i + 1])) for i in range(0, len(found), 2)]

    def due_at(self, member: str) -> float | None:
        return self._redis.zscore(self.key, member)
