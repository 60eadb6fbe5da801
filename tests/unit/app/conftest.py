from __future__ import annotations

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
