"""Latency and outcome metrics (SPEC §5's table), observed in any process and shared through Redis.

A process adds its observations up in memory and writes them in one pipeline at most once a
second (``Observations.flush``), so a delivery pays no round trip for them. Redis keeps one hash
of integers and sums: ``<metric>|<labels>|<bucket index>`` counts a histogram's observations per
bucket (not cumulative), ``<metric>|<labels>|sum`` their sum, ``<metric>|<labels>`` a counter.
Every web's ``/metrics`` reads the hash (``families``). A process killed hard loses at most its
last second of observations; the counters of the ingress and the ledger are not among them.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class Spec:
    name: str  # without the _total a counter's samples get
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()  # a histogram's upper bounds, +Inf implied; none: a counter


HISTOGRAMS = (
    # From the ingress's receipt: milliseconds when the workers keep up, minutes in a backlog.
    Spec("chathooks_delivery_seconds", "Ingress receipt to every handler of the delivery done", ("source",),
         (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)),
    Spec("chathooks_handler_seconds", "One handler run", ("handler",),
         (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)),
    Spec("chathooks_outbound_seconds", "Calls to LiveChat, LHC and Mailchimp", ("platform", "method"),
         (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)),
    # Timers promise 2 s: the buckets are fine around it.
    Spec("chathooks_timer_lateness_seconds", "Nudges, triggers and retries run after their deadline by", ("kind",),
         (0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300)),
)
COUNTERS = (
    Spec("chathooks_outbound_requests", "Calls to LiveChat, LHC and Mailchimp, by outcome (ok or the error class)",
         ("platform", "method", "outcome")),
    Spec("chathooks_retries", "Handler retries scheduled", ("handler",)),
)
SPECS = {spec.name: spec for spec in (*HISTOGRAMS, *COUNTERS)}
# A timer is overdue when the tick (every second) has not claimed it this long after its deadline.
OVERDUE_SECONDS = 2.0


class Observations:
    """One process's observations since its last flush."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._counts: dict[str, int] = {}
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()  # the ingress may run threaded workers
        self._clock = clock
        self._flushed = clock()

    def observe(self, metric: str, value: float, *labels: str) -> None:
        """One observation of histogram ``metric`` with its label values, in the spec's order."""
        spec, series = SPECS[metric], _series(metric, labels)
        bucket = bisect.bisect_left(spec.buckets, value)  # le: a value on a bound falls in that bucket
        with self._lock:
            field = f"{series}|{bucket}"
            self._counts[field] = self._counts.get(field, 0) + 1
            self._sums[f"{series}|sum"] = self._sums.get(f"{series}|sum", 0.0) + value

    def count(self, metric: str, *labels: str) -> None:
        series = _series(metric, labels)
        with self._lock:
            self._counts[series] = self._counts.get(series, 0) + 1

    def flush(self, pipe: redis.client.Pipeline, key: str, *, force: bool = False) -> bool:
        """Queue the observations on ``pipe`` (the caller executes it) when a second has passed, or ``force``."""
        now = self._clock()
        if not force and now - self._flushed < FLUSH_SECONDS:
            return False
        with self._lock:
            counts, sums, self._counts, self._sums = self._counts, self._sums, {}, {}
        self._flushed = now
        for field, n in counts.items():
            pipe.hincrby(key, field, n)
        for field, total in sums.items():
            pipe.hincrbyfloat(key, field, total)
        return bool(counts or sums)


def _series(metric: str, labels: Iterable[str]) -> str:
    # Label values are ours (sources, handler and method names, kinds), never user text: no '|' or ','.
    return f"{metric}|{','.join(labels)}"


OBSERVATIONS = Observations()  # the process's: outbound calls are observed wherever they are made


def families(raw: Mapping[bytes, bytes], timers: int, overdue: int) -> Iterable[Metric]:
    """The table's metric families from the shared hash, every one with HELP and TYPE, samples or not."""
    buckets: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    sums: dict[tuple[str, tuple[str, ...]], float] = {}
    counters: dict[str, dict[tuple[str, ...], int]] = {spec.name: {} for spec in COUNTERS}
    for field_bytes, value in raw.items():
        metric, _, rest = field_bytes.decode().partition("|")
        spec = SPECS.get(metric)
        if spec is None:
            continue
        if not spec.buckets:
            counters[metric][tuple(rest.split(",")) if spec.labels else ()] = int(value)
            continue
        labels_text, _, part = rest.rpartition("|")
        series = (metric, tuple(labels_text.split(",")))
        if part == "sum":
            sums[series] = float(value)
        elif part.isdigit() and int(part) <= len(spec.buckets):
            buckets.setdefault(series, [0] * (len(spec.buckets) + 1))[int(part)] += int(value)
    for spec in HISTOGRAMS:
        family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
        for (metric, labels), counts in sorted(buckets.items()):
            if metric != spec.name or len(labels) != len(spec.labels):
                continue
            cumulative, total = [], 0
            for bound, n in zip((*map(_bound, spec.buckets), "+Inf"), counts, strict=True):
                total += n
                cumulative.append((bound, total))
            family.add_metric(list(labels), cumulative, sums.get((metric, labels), 0.0))
        yield family
    for spec in COUNTERS:
        family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
        for labels, n in sorted(counters[spec.name].items()):
            if len(labels) == len(spec.labels):
                family.add_metric(list(labels), n)
        yield family
    yield GaugeMetricFamily("chathooks_timers_due", "Timers waiting (nudge and trigger moments, retries)", value=timers)
    yield GaugeMetricFamily("chathooks_timers_overdue",
                            f"Timers waiting more than {OVERDUE_SECONDS:g}s past their deadline", value=overdue)


def _bound(value: float) -> str:
    return repr(float(value))
