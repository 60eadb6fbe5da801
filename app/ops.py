"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.ingress import current_ingress
from chathooks import metrics, observed

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, object], int]:
    ingress = current_ingress()
    checks = {"redis": _ping(ingress.redis), "broker": ingress.broker.ping()}
    ready = all(checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503


@bp.get("/metrics")
def prometheus() -> Response:
    ingress = current_ingress()
    try:
        counters = ingress.metrics.snapshot()
        depths = ingress.broker.queue_depths()
        dead = ingress.dead_letters()
        with ingress.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(ingress.keys.observed)
            pipe.zcard(ingress.keys.schedule)
            pipe.zcount(ingress.keys.schedule, "-inf", time.time() - observed.OVERDUE_SECONDS)
            raw, timers, overdue = pipe.execute()
    except redis.RedisError:
        return Response("# redis unavailable\n", status=503, mimetype="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([*metrics.families(counters, depths, dead), *observed.families(raw, timers, overdue)]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/openapi.json")
def openapi_document() -> dict[str, object]:
    return current_app.extensions["chathooks.openapi"]


class _Snapshot:
    def __init__(self, families: list) -> None:
        self._families = families

    def collect(self):  # type: ignore[no-untyped-def]
        return iter(self._families)


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
