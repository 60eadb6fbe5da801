from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chathooks.metrics import families


class _Collector:
    def __init__(self, *args):
        self.args = args

    def collect(self):
        return families(*self.args)


def samples(*args):
    registry = CollectorRegistry()
    registry.register(_Collector(*args))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(s.labels.values())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_counters_gauges_and_every_reject_reason():
    m = samples({"received:livechat": 5, "queued:livechat": 4, "processed:livechat": 3, "rejected:bad_json": 1},
                {"chathooks.events": 2}, 7)
    assert m[("chathooks_webhooks_received_total", ("livechat",))] == 5
    assert m[("chathooks_deliveries_processed_total", ("livechat",))] == 3
    assert m[("chathooks_webhooks_rejected_total", ("bad_json",))] == 1
    assert m[("chathooks_webhooks_rejected_total", ("too_large",))] == 0
    assert m[("chathooks_queue_depth", ("chathooks.events",))] == 2
    assert m[("chathooks_dead_letters", ())] == 7


def test_effects_skipped_by_reason_are_exported_from_the_first_scrape():
    m = samples({"skipped:no_subject": 2}, {}, 0)
    assert m[("chathooks_effects_skipped_total", ("no_subject",))] == 2
    assert m[("chathooks_effects_skipped_total", ("bot_not_accepting",))] == 0
