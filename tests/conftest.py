"""Fixtures for every test: settings isolated under a unique key prefix and queue name."""

from __future__ import annotations

import uuid

import fakeredis
import pytest

from chathooks.settings import Settings
from tests.helpers import SECRET


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
