"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from chathooks.redis_client import connect
from tests.helpers import fixture


def samples(response) -> dict[tuple[str, tuple], float]:  # type: ignore[no-untyped-def]
    out = {}
    for family in text_string_to_metric_families(response.data.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_checks_redis_and_broker(client, settings):
    assert client.get("/readyz").status_code == 200
    dead = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", 0.2)).test_client()
    response = dead.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"redis": False, "broker": False}


def test_metrics_count_outcomes_and_queue_depth(client, settings):
    client.post("/webhooks/livechat", json=fixture("incoming_event"))
    client.post("/webhooks/livechat", json=fixture("incoming_event"))
    client.post("/webhooks/livechat", json=fixture("events_marked_as_seen"))
    client.post("/webhooks/livechat", json={"secret_key": "wrong"})
    client.post("/webhooks/livechat", data="x", content_type="text/plain")
    m = samples(client.get("/metrics"))
    src = (("source", "livechat"),)
    assert m[("chathooks_webhooks_received_total", src)] == 5
    assert m[("chathooks_webhooks_queued_total", src)] == 1
    assert m[("chathooks_webhooks_duplicates_total", src)] == 1
    assert m[("chathooks_webhooks_ignored_total", src)] == 1
    assert m[("chathooks_webhooks_rejected_total", (("reason", "bad_secret"),))] == 1
    assert m[("chathooks_webhooks_rejected_total", (("reason", "unsupported_media_type"),))] == 1
    assert m[("chathooks_queue_depth", (("queue", settings.queue),))] == 1
    assert m[("chathooks_dead_letters", ())] == 0


def test_metrics_are_shared_by_every_process(settings, fake_redis):
    """Two app instances (two gunicorn workers) report the same totals."""
    one = create_app(settings, redis_client=fake_redis).test_client()
    two = create_app(settings, redis_client=fake_redis).test_client()
    one.post("/webhooks/livechat", json=fixture("incoming_event"))
    two.post("/webhooks/livechat", json=fixture("chat_deactivated"))
    key = ("chathooks_webhooks_queued_total", (("source", "livechat"),))
    assert samples(one.get("/metrics"))[key] == samples(two.get("/metrics"))[key] == 2


def test_metrics_503_when_redis_is_down(settings):
    dead = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", 0.2)).test_client()
    assert dead.get("/metrics").status_code == 503
