"""What every ingress endpoint shares: the wiring, request checks, and JSON rejections."""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Request, current_app, request
from werkzeug.exceptions import ClientDisconnected

from chathooks.broker import Broker
from chathooks.events import Delivery
from chathooks.keys import Keys
from chathooks.metrics import Metrics
from chathooks.platforms.base import InvalidPayload
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.adapter import SOURCE as LIVECHAT
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.profiles import Profiles
from chathooks.queue import Enqueuer, QueueUnavailable, make_enqueuer
from chathooks.redis_client import state_client
from chathooks.rules import Rules, load_rules
from chathooks.settings import Settings

log = logging.getLogger("chathooks.ingress")


class Rejection(Exception):
    """A request we refuse: answered as JSON with ``status`` and counted under ``reason``."""

    def __init__(self, status: int, reason: str, error: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, countable: bool = True) -> None:
        super().__init__(error)
        self.status, self.reason, self.error = status, reason, error
        self.details = details
        self.headers = headers or {}
        self.countable = countable  # False when Redis, where the counters live, is what failed

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
    rules: Rules
    profiles: Profiles
    tenants: TenantStore | None = None  # many licenses (SPEC §11): who installed the app
    accounts: AccountsClient | None = None

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis | None = None) -> Ingress:
        client = client or state_client(settings)
        keys = Keys(settings.key_prefix)
        metrics = Metrics(client, keys)
        broker = Broker(settings, client)
        market = settings.marketplace
        return cls(settings, client, keys, metrics, broker, make_enqueuer(settings, client, keys, broker),
                   load_rules(settings.rules_path),
                   Profiles(client, keys, settings.profile_ttl_seconds, settings.chat_ttl_seconds),
                   TenantStore(client, settings.key_prefix, market.secret_keys) if market else None,
                   AccountsClient(market) if market else None)

    def dead_letters(self) -> int:
        return int(self.redis.zcard(self.keys.dead_letters))

    def secret_accepted(self, secret: object) -> bool:
        """The LiveChat ``secret_key``, against LIVECHAT_WEBHOOK_SECRETS (any, in insecure dev mode without them)."""
        return accepted(secret, self.settings.webhook_secrets) or (
            self.settings.insecure_dev and not self.settings.webhook_secrets)

    def check_basic_auth(self, request: Request, *, required: str | None = None) -> None:
        """HTTP Basic against INGRESS_BASIC_AUTH when set; unset, a route that ``required`` it answers 403."""
        expected = self.settings.ingress_basic_auth
        if expected is None:
            if required is not None:
                raise Rejection(403, "not_configured", f"INGRESS_BASIC_AUTH is not set: {required}")
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

    def accept(self, source: str, normalise: Callable[[], Delivery | None]) -> dict[str, str]:
        """Normalise a verified webhook and queue it once; nothing to automate is answered ``ignored``."""
        try:
            delivery = normalise()
        except InvalidPayload as exc:
            raise Rejection(400, "invalid_payload", "invalid webhook", exc.errors) from None
        if delivery is None:
            self.metrics.count(f"received:{source}", f"ignored:{source}")
            return {"status": "ignored"}
        if self._uninstalled(source, delivery):
            self.metrics.count(f"received:{source}", f"ignored:{source}", f"uninstalled:{source}")
            return {"status": "ignored"}
        return self.queue(delivery)

    def _uninstalled(self, source: str, delivery: Delivery) -> bool:
        """Whether the delivery is from an organization that uninstalled the app (multi-license mode)."""
        if self.tenants is None or source != LIVECHAT or delivery.organization is None:
            return False
        try:
            return self.tenants.status(delivery.organization) is Status.UNINSTALLED
        except redis.RedisError as exc:
            raise unavailable("tenant store unavailable; retry later") from exc

    def queue(self, delivery: Delivery) -> dict[str, str]:
        """Durably queue once; the reply body says which happened."""
        return self.queue_after((), delivery)[1]

    def queue_after(self, reads: Sequence[Sequence[Any]], delivery: Delivery) -> tuple[list[Any], dict[str, str]]:
        """``queue``, after the Redis commands ``reads`` and in the same round trip where the broker is Redis:
        their replies as the server sent them, and the reply body."""
        try:
            replies, queued = self.enqueuer.enqueue_after(reads, delivery)
        except QueueUnavailable as exc:
            log.error("delivery %s not queued: %s", delivery.id, exc)
            # A timed-out write may still land when Redis recovers; then the retry is answered "duplicate".
            raise unavailable("queue unavailable; retry later (a retry is deduplicated)",
                              redis_failed=isinstance(exc.__cause__, redis.RedisError)) from None
        return replies, {"status": "queued" if queued else "duplicate", "id": delivery.id}


def accepted(given: object, secrets: tuple[str, ...]) -> bool:
    """Constant-time comparison against every accepted secret (several allow rotation)."""
    if not isinstance(given, str):
        return False
    raw = given.encode()
    # Compare against all of them, so timing does not tell which one matched.
    matches = [hmac.compare_digest(raw, s.encode()) for s in secrets]
    return any(matches)


def unavailable(error: str, redis_failed: bool = True) -> Rejection:
    """The 503 for Redis or the broker being away: never a 200 for work that was not durably done."""
    # Counters live in Redis too: when Redis is what failed, they are not tried.
    return Rejection(503, "unavailable", error, headers={"Retry-After": "5"}, countable=not redis_failed)


def current_ingress() -> Ingress:
    return current_app.extensions["chathooks"]


def json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


def read_json_object(request: Request, max_bytes: int,
                     accepts: Callable[[str], bool] = json_mimetype) -> dict[str, Any]:
    """The request body as a JSON object, or a Rejection saying what is wrong with it.

    ``accepts`` says which Content-Types (``""`` for none) may carry the JSON: by default, JSON's own.
    """
    if not accepts(request.mimetype or ""):
        raise Rejection(415, "unsupported_media_type", "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > max_bytes:
        raise Rejection(413, "too_large", f"body larger than {max_bytes} bytes")
    try:
        data = request.get_data(cache=False)
    except ClientDisconnected:  # fewer bytes arrived than Content-Length announced
        raise Rejection(400, "bad_json", "body shorter than its Content-Length",
                        {"body": ["incomplete body"]}) from None
    if len(data) > max_bytes:  # chunked bodies carry no Content-Length
        raise Rejection(413, "too_large", f"body larger than {max_bytes} bytes")
    return parse_json_object(data)


MAX_DEPTH = 32  # LiveChat nests about 10 deep; anything far deeper is hostile and would exhaust recursion later

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json_object(data: bytes) -> dict[str, Any]:
    """Strict JSON, as I-JSON (RFC 7493) asks: UTF-8, unique keys, finite numbers, no unpaired surrogates;
    and an object nested at most ``MAX_DEPTH`` levels.

    Raises a 400 Rejection with the problem under ``fields``: at the offending field where it has one.
    """
    if not data:
        raise _bad_json({"body": ["empty body"]})
    try:
        text = data.decode()
        body = _DECODER.decode(text)
    except RecursionError:
        raise _bad_json({"body": [f"nested deeper than {MAX_DEPTH} levels"]}) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and the decoder hooks below
        raise _bad_json({"body": [str(exc)[:200]]}) from None
    if not isinstance(body, dict):
        raise Rejection(400, "bad_json", "body must be a JSON object", {"body": ["expected an object"]})
    # Only bodies that could break these rules pay for a walk: fewer brackets than MAX_DEPTH cannot nest
    # deeper, and unpaired surrogates can only come from \uD800-\uDFFF escapes.
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH and _deeper_than(body, MAX_DEPTH):
        raise _bad_json({"body": [f"nested deeper than {MAX_DEPTH} levels"]})
    if _SURROGATE_ESCAPE.search(text) and (path := _unpaired_surrogate(body)) is not None:
        raise _bad_json(_at(path, "unpaired UTF-16 surrogate: not valid Unicode"))
    return body


def _bad_json(fields: dict[str, Any]) -> Rejection:
    return Rejection(400, "bad_json", "body is not valid JSON", fields)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key[:100]!r}")
            seen.add(key)
    return obj


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"number out of range: {literal[:50]}")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant, parse_float=_finite_float)


def _deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether containers nest deeper than ``limit``, level by level so no recursion can run out."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [child for v in level for child in (v.values() if isinstance(v, dict) else v)
                 if isinstance(child, (dict, list))]
        if not level:
            return False
    return True


def _unpaired_surrogate(value: Any) -> tuple[str | int, ...] | None:
    """Where an unpaired surrogate is: the path of the string holding one, or of the object whose key does."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return path
        elif isinstance(v, dict):
            if any(_SURROGATE.search(k) for k in v):
                return path
            stack.extend(((*path, k), child) for k, child in v.items())
        elif isinstance(v, list):
            stack.extend(((*path, i), child) for i, child in enumerate(v))
    return None


def _at(path: tuple[str | int, ...], message: str) -> dict[str, Any]:
    """A field-level error nested along ``path``, as marshmallow nests them."""
    error: Any = [message]
    for part in reversed(path):
        error = {part: error}
    return error if path else {"body": error}


def count_rejection(reason: str) -> None:
    # Blueprints are named after their source, so a webhook request counts as received too.
    source = request.blueprint
    current_ingress().metrics.count(f"rejected:{reason}", *([f"received:{source}"] if source else []))


def register_error_handlers(app: Flask) -> None:
    """Every response is JSON, errors included."""
    from werkzeug.exceptions import HTTPException

    @app.errorhandler(Rejection)
    def rejected(exc: Rejection):  # type: ignore[no-untyped-def]
        if exc.countable:
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
