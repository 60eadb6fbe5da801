"""Fixtures for every test: settings isolated under a unique key prefix and queue name."""

from __future__ import annotations

import uuid

import fakeredis
import pytest
import redis

from chathooks.settings import Settings
from tests.helpers import REAL_REDIS_URL, SECRET


def make_settings(**env: str) -> Settings:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    base = {
        "LIVECHAT_WEBHOOK_SECRETS": f"old-secret,{SECRET}",
        "CHATHOOKS_KEY_PREFIX": prefix,
        "CHATHOOKS_QUEUE": f"{prefix}events",
    }
    return Settings.from_env({**base, **env})


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def real_redis() -> redis.Redis:
    """A client of the local Redis (skipped without one); its ``prefix`` attribute is this test's own, and
    what was written under it is deleted afterwards."""
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"real:{uuid.uuid4().hex[:8]}:"
    client.prefix = prefix  # type: ignore[attr-defined]
    yield client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
