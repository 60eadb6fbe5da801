"""What every ingress endpoint shares: the wiring, request checks, and JSON rejections."""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Request, current_app, request

from chathooks.broker import Broker
from chathooks.events import Delivery
from chathooks.keys import Keys
from chathooks.metrics import Metrics
from chathooks.queue import Enqueuer, QueueUnavailable, make_enqueuer
from chathooks.redis_client import connect
from chathooks.settings import Settings

log = logging.getLogger("chathooks.ingress")


class Rejection(Exception):
    """A request we refuse: answered as JSON with ``status`` and counted under ``reason``."""

    def __init__(self, status: int, reason: str, error: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.reason, self.error = status, reason, error
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.details:
            body["fields"] = self.details
        return body


@dataclass
class Ingress:
    """The per-process ingress wiring, built once by the application factory."""

    settings: Settings
    redis: redis.Redis
    keys: Keys
    metrics: Metrics
    broker: Broker
    enqueuer: Enqueuer

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis | None = None) -> Ingress:
        client = client or connect(settings.redis_url, settings.redis_timeout_seconds)
        keys = Keys(settings.key_prefix)
        metrics = Metrics(client, keys)
        broker = Broker(settings, client)
        return cls(settings, client, keys, metrics, broker, make_enqueuer(settings, client, keys, metrics, broker))

    def dead_letters(self) -> int:
        return int(self.redis.zcard(self.keys.dead_letters))

    def secret_accepted(self, secret: object) -> bool:
        """Constant-time comparison against every accepted secret (several allow rotation)."""
        if not isinstance(secret, str):
            return False
        given = secret.encode()
        # Compare against all of them, so timing does not tell which one matched.
        matches = [hmac.compare_digest(given, s.encode()) for s in self.settings.webhook_secrets]
        return any(matches) or (self.settings.insecure_dev and not self.settings.webhook_secrets)

    def check_basic_auth(self, request: Request) -> None:
        expected = self.settings.ingress_basic_auth
        if expected is None:
            return
        auth = request.authorization
        ok = (
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest((auth.username or "").encode(), expected[0].encode())
            & hmac.compare_digest((auth.password or "").encode(), expected[1].encode())
        )
        if not ok:
            raise Rejection(401, "bad_basic_auth", "HTTP Basic authentication required",
                            headers={"WWW-Authenticate": 'Basic realm="chathooks", charset="UTF-8"'})

    def queue(self, delivery: Delivery) -> dict[str, str]:
        """Durably queue once; the reply body says which happened."""
        try:
            queued = self.enqueuer.enqueue(delivery)
        except QueueUnavailable as exc:
            log.error("delivery %s not queued: %s", delivery.id, exc)
            raise Rejection(503, "unavailable", "queue unavailable, nothing was queued; retry later",
                            headers={"Retry-After": "5"}) from None
        return {"status": "queued" if queued else "duplicate", "id": delivery.id}


def current_ingress() -> Ingress:
    return current_app.extensions["chathooks"]


def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or a Rejection saying what is wrong with it."""
    if not request.mimetype or not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        raise Rejection(415, "unsupported_media_type", "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise Rejection(413, "too_large", f"body larger than {max_bytes} bytes")
    data = request.get_data(cache=False)
    if len(data) > max_bytes:  # chunked bodies carry no Content-Length
        raise Rejection(413, "too_large", f"body larger than {max_bytes} bytes")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Rejection(400, "bad_json", "body is not valid UTF-8 JSON",
                        {"body": [str(exc)[:200] if isinstance(exc, ValueError) else "nested too deeply"]}) from None
    if not isinstance(body, dict):
        raise Rejection(400, "bad_json", "body must be a JSON object", {"body": ["expected an object"]})
    return body


def count_rejection(reason: str) -> None:
    # Blueprints are named after their source, so a webhook request counts as received too.
    source = request.blueprint
    current_ingress().metrics.count(f"rejected:{reason}", *([f"received:{source}"] if source else []))


def register_error_handlers(app: Flask) -> None:
    """Every response is JSON, errors included."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(Rejection)
    def rejected(exc: Rejection):  # type: ignore[no-untyped-def]
        count_rejection(exc.reason)
        return exc.body(), exc.status, exc.headers

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if exc.code == 413:
            count_rejection("too_large")
        return {"error": exc.description or exc.name}, exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error")
        return {"error": "internal error"}, 500
