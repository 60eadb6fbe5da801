from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from chathooks.settings import Settings


@pytest.fixture
def app(settings: Settings, fake_redis) -> Flask:  # type: ignore[no-untyped-def]
    return create_app(settings, redis_client=fake_redis)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def queued(fake_redis, settings: Settings) -> list[dict]:  # type: ignore[no-untyped-def]
    """The delivery messages waiting in the queue, decoded as a worker would."""
    out = []
    for raw in fake_redis.lrange(settings.queue, 0, -1):
        envelope = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        assert envelope["headers"]["task"] == "chathooks.process_delivery"
        out.append(args[0])
    return out


def field_errors(response, *path: str) -> object:  # type: ignore[no-untyped-def]
    """A 400's field errors at ``path`` (failing the test when there are none there)."""
    assert response.status_code == 400, response.get_data(as_text=True)
    errors = response.json["fields"]
    for part in path:
        errors = errors[part]
    assert errors
    return errors


QueueState = Callable[[], tuple[int, frozenset[bytes]]]


def queue_state_of(fake_redis, settings: Settings) -> QueueState:  # type: ignore[no-untyped-def]
    """What the ingress has durably claimed: the queue's length and the dedupe keys."""
    return lambda: (fake_redis.llen(settings.queue), frozenset(fake_redis.keys(f"{settings.key_prefix}dedupe:*")))


@pytest.fixture
def queue_state(fake_redis, settings: Settings) -> QueueState:  # type: ignore[no-untyped-def]
    return queue_state_of(fake_redis, settings)
