"""The benchmark's Redis and its namespaces: a private embedded server, or ``REDIS_URL`` under a db of its own.

Every measurement works under a ``Namespace`` (key prefix and queue), so it cleans up only
its own keys, and its processes get an environment naming nothing but that namespace.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from chathooks.embedded_redis import EmbeddedRedis
from chathooks.keys import Keys

SECRET = "bench-secret"
DB_VARIABLE = "CHATHOOKS_BENCH_REDIS_DB"
# Whatever the caller's shell configures must not leak into the measured processes.
_DROPPED_PREFIXES = ("LIVECHAT_", "MAILCHIMP_", "CHATHOOKS_", "INGRESS_", "CELERY_", "FLOWER_", "WEB_CONCURRENCY")


@dataclass(frozen=True)
class Namespace:
    """One measurement's keys: everything under ``prefix``, its queue included."""

    redis_url: str
    prefix: str

    @property
    def queue(self) -> str:
        return f"{self.prefix}events"

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a web or worker process of this namespace: dry-run, no outbound credentials."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
        return {
            **base,
            "REDIS_URL": self.redis_url,
            "CHATHOOKS_KEY_PREFIX": self.prefix,
            "CHATHOOKS_QUEUE": self.queue,
            "LIVECHAT_WEBHOOK_SECRETS": SECRET,
            "CHATHOOKS_DRY_RUN": "1",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def clean(self, client: redis.Redis) -> None:
        """Delete this namespace's keys and the broker's bindings for its queues."""
        for pattern in (f"{self.prefix}*", f"_kombu.binding*{self.prefix}*"):
            batch = list(client.scan_iter(pattern, count=1000))
            for i in range(0, len(batch), 1000):
                client.delete(*batch[i:i + 1000])


@dataclass(frozen=True)
class RedisTarget:
    url: str
    embedded: bool
    run_id: str

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def namespace(self, name: str) -> Namespace:
        return Namespace(self.url, f"bench:{self.run_id}:{name}:")


@contextmanager
def private_redis(work_dir: Path, environ: Mapping[str, str] | None = None) -> Iterator[RedisTarget]:
    """``REDIS_URL`` (on db ``CHATHOOKS_BENCH_REDIS_DB``, default 14) if set, else an embedded server
    with AOF as in production, stopped afterwards."""
    env = os.environ if environ is None else environ
    run_id = uuid.uuid4().hex[:8]
    if env.get("REDIS_URL"):
        parts = urlsplit(env["REDIS_URL"])
        yield RedisTarget(urlunsplit(parts._replace(path=f"/{env.get(DB_VARIABLE, '14')}")), False, run_id)
        return
    with EmbeddedRedis(work_dir / "redis") as server:
        yield RedisTarget(server.url, True, run_id)
