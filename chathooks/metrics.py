"""Pipeline counters kept in Redis, so every gunicorn worker on every host adds to the same figures."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from chathooks.keys import Keys

log = logging.getLogger(__name__)

# Why an effect was not sent (SPEC §5's reason values); exported from the first scrape, zero or not.
SKIP_REASONS = ("already_done", "bot_not_accepting", "chat_inactive", "dry_run", "no_email", "no_subject")

REJECT_REASONS = (
    "bad_secret", "bad_basic_auth", "bad_json", "invalid_payload", "unsupported_media_type",
    "too_large", "unavailable", "not_configured", "bad_token",
)


class Metrics:
    """Counter fields look like ``received:livechat`` or ``rejected:bad_json``."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._key = keys.metrics

    def count(self, *fields: str) -> None:
        """Add one to each field; a Redis outage must not turn a reply into an error, so it only logs."""
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for field in fields:
                    pipe.hincrby(self._key, field, 1)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics not counted (%s): %s", ", ".join(fields), exc)

    def snapshot(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self._redis.hgetall(self._key).items()}


def families(counters: Mapping[str, int], queue_depths: Mapping[str, int],
             dead_letters: int | None) -> Iterable[Metric]:
    """Prometheus metric families from the shared counters and current gauges."""
    by_source = {
        "received": CounterMetricFamily("chathooks_webhooks_received", "Webhook requests received", labels=["source"]),
        "queued": CounterMetricFamily("chathooks_webhooks_queued", "Deliveries durably queued", labels=["source"]),
        "duplicate": CounterMetricFamily(
            "chathooks_webhooks_duplicates", "Deliveries answered as duplicates (not queued)", labels=["source"]),
        "ignored": CounterMetricFamily(
            "chathooks_webhooks_ignored", "Valid deliveries with no automation (not queued)", labels=["source"]),
        "processed": CounterMetricFamily(
            "chathooks_deliveries_processed", "Queued deliveries whose handlers the workers ran (each once)",
            labels=["source"]),
        "redelivered": CounterMetricFamily(
            "chathooks_deliveries_redelivered", "Task runs of a delivery already processed (an acknowledgement "
            "lost with the broker, a task cut short after it finished): guarded effects are not repeated",
            labels=["source"]),
        "poisoned": CounterMetricFamily(
            "chathooks_deliveries_poisoned", "Deliveries RabbitMQ dead-lettered after their delivery limit (each "
            "delivery ended its worker): moved to the dead-letter store", labels=["source"]),
        "unreplicated": CounterMetricFamily(
            "chathooks_webhooks_unreplicated", "Deliveries queued on the master that no replica confirmed in time "
            "(a failover could lose them)", labels=["source"]),
        "uninstalled": CounterMetricFamily(
            "chathooks_webhooks_uninstalled", "Deliveries for an organization that uninstalled the app (answered "
            "ignored)", labels=["source"]),
    }
    rejected = CounterMetricFamily("chathooks_webhooks_rejected", "Requests rejected, by reason", labels=["reason"])
    skipped = CounterMetricFamily("chathooks_effects_skipped", "Effects not sent, by reason", labels=["reason"])
    parked = CounterMetricFamily("chathooks_deliveries_parked", "Work parked until its organization can be acted "
                                 "for (dead-letter store), by reason", labels=["reason"])
    dropped = CounterMetricFamily("chathooks_deliveries_dropped", "Handler runs dropped: their organization "
                                  "uninstalled the app", labels=["reason"])
    seen_reasons, seen_skips = set(), set()
    for field, value in sorted(counters.items()):
        name, _, label = field.partition(":")
        if name in by_source:
            by_source[name].add_metric([label], value)
        elif name == "rejected":
            rejected.add_metric([label], value)
            seen_reasons.add(label)
        elif name == "skipped":
            skipped.add_metric([label], value)
            seen_skips.add(label)
        elif name == "parked":
            parked.add_metric([label], value)
        elif name == "dropped":
            dropped.add_metric([label], value)
    for reason in REJECT_REASONS:
        if reason not in seen_reasons:
            rejected.add_metric([reason], 0)
    for reason in SKIP_REASONS:
        if reason not in seen_skips:
            skipped.add_metric([reason], 0)
    depth = GaugeMetricFamily("chathooks_queue_depth", "Messages waiting in each queue", labels=["queue"])
    for queue, n in sorted(queue_depths.items()):
        depth.add_metric([queue], n)
    yield from by_source.values()
    yield rejected
    yield skipped
    yield parked
    yield dropped
    yield depth
    if dead_letters is not None:
        yield GaugeMetricFamily("chathooks_dead_letters", "Items in the dead-letter store", value=dead_letters)
