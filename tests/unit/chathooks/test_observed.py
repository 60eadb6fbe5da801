"""Histograms and labelled counters: added up per process, written at most once a second, read by every web."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chathooks.observed import COUNTERS, HISTOGRAMS, Observations, families

KEY = "test:observed"


class _Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class _Collector:
    def __init__(self, *args):
        self.args = args

    def collect(self):
        return families(*self.args)


def scrape(raw, timers=0, overdue=0):
    registry = CollectorRegistry()
    registry.register(_Collector(raw, timers, overdue))
    text = generate_latest(registry).decode()
    return text, {(s.name, frozenset(s.labels.items())): s.value
                  for f in text_string_to_metric_families(text) for s in f.samples}


def written(fake_redis, obs, force=True):
    with fake_redis.pipeline(transaction=False) as pipe:
        if obs.flush(pipe, KEY, force=force):
            pipe.execute()
    return fake_redis.hgetall(KEY)


def test_every_metric_of_the_table_is_exported_from_the_first_scrape():
    text, samples = scrape({})
    for spec in (*HISTOGRAMS, *COUNTERS):
        assert f"# HELP {spec.name}" in text and f"# TYPE {spec.name}" in text
    assert samples[("chathooks_timers_due", frozenset())] == 0
    assert samples[("chathooks_timers_overdue", frozenset())] == 0


def test_a_histogram_is_cumulative_with_its_sum_and_count(fake_redis):
    obs = Observations(_Clock())
    for seconds in (0.004, 0.005, 0.2, 400):
        obs.observe("chathooks_delivery_seconds", seconds, "livechat")
    _, samples = scrape(written(fake_redis, obs))
    series = ("source", "livechat")

    def bucket(le):
        return samples[("chathooks_delivery_seconds_bucket", frozenset((series, ("le", le))))]
    assert bucket("0.005") == 2  # a value on a bound is in its bucket
    assert bucket("0.25") == 3 and bucket("+Inf") == 4
    assert samples[("chathooks_delivery_seconds_count", frozenset((series,)))] == 4
    assert abs(samples[("chathooks_delivery_seconds_sum", frozenset((series,)))] - 400.209) < 1e-9


def test_processes_add_up_in_redis(fake_redis):
    for _ in range(2):  # two workers, one hash
        obs = Observations(_Clock())
        obs.count("chathooks_outbound_requests", "livechat", "tag_thread", "ok")
        obs.count("chathooks_retries", "tagging.match")
        written(fake_redis, obs)
    _, samples = scrape(fake_redis.hgetall(KEY), timers=3, overdue=1)
    labels = frozenset((("platform", "livechat"), ("method", "tag_thread"), ("outcome", "ok")))
    assert samples[("chathooks_outbound_requests_total", labels)] == 2
    assert samples[("chathooks_retries_total", frozenset((("handler", "tagging.match"),)))] == 2
    assert samples[("chathooks_timers_due", frozenset())] == 3
    assert samples[("chathooks_timers_overdue", frozenset())] == 1


def test_observations_are_written_at_most_once_a_second(fake_redis):
    clock = _Clock()
    obs = Observations(clock)
    obs.count("chathooks_retries", "h")
    assert written(fake_redis, obs, force=False) == {}  # the process has just started
    clock.now += 1.0
    assert written(fake_redis, obs, force=False) != {}
    obs.count("chathooks_retries", "h")
    assert written(fake_redis, obs, force=False)[b"chathooks_retries|h"] == b"1"  # held back again


def test_fields_of_other_metrics_are_not_read_as_samples():
    _, samples = scrape({b"unknown|x": b"1", b"chathooks_handler_seconds|h|99": b"5"})
    assert not [k for k in samples if k[0].startswith("chathooks_handler_seconds_bucket")]
