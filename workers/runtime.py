"""What handlers need, built once per worker process and passed to them explicitly."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from chathooks.keys import Keys
from chathooks.redis_client import connect
from chathooks.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    keys: Keys

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis | None = None) -> Runtime:
        client = client or connect(settings.redis_url, timeout=10.0)
        return cls(settings=settings, redis=client, keys=Keys(settings.key_prefix))


_runtimes: dict[int, Runtime] = {}


def runtime_for(app: Celery) -> Runtime:
    """The process's runtime for ``app`` (tests may install their own with ``install``)."""
    rt = _runtimes.get(id(app))
    if rt is None:
        rt = _runtimes[id(app)] = Runtime.build(app.chathooks_settings)  # type: ignore[attr-defined]
    return rt


def install(app: Celery, runtime: Runtime) -> None:
    _runtimes[id(app)] = runtime
