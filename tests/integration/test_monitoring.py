"""The shipped monitoring: the alert rules pass promtool, a real Prometheus scrapes a real web process and
answers a query over a chathooks metric, and every dashboard query names a metric the app exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bench.processes import ROOT
from chathooks.embedded_redis import free_port
from tests.helpers import fixture

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "chathooks.json"
PROMQL_WORDS = {"sum", "rate", "increase", "histogram_quantile", "deriv", "min_over_time", "and", "or"}

needs_prometheus = pytest.mark.skipif(shutil.which("promtool") is None or shutil.which("prometheus") is None,
                                      reason="Debian's prometheus package (make test installs it when run as root)")


def exported(url: str) -> set[str]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names |= {name, f"{name}_total"} if kind == "counter" else {name}
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def dashboard_metrics() -> set[str]:
    found = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = re.sub(r"\{[^}]*\}|\[[^]]*\]|\bby \([^)]*\)", "", target["expr"])  # labels, ranges, by
            found |= {w for w in re.findall(r"[a-z_][a-z0-9_]*", expr) if w not in PROMQL_WORDS}
    return found


@needs_prometheus
def test_the_alert_rules_are_valid():
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_dashboard_query_names_a_metric_the_app_exports(web):
    names = exported(web)
    assert {n for n in dashboard_metrics() if n.startswith("chathooks_")} <= names
    assert dashboard_metrics() <= names, dashboard_metrics() - names  # nothing else either
    for metric in ("chathooks_delivery_seconds", "chathooks_handler_seconds", "chathooks_outbound_requests_total",
                   "chathooks_outbound_seconds", "chathooks_timer_lateness_seconds", "chathooks_retries_total",
                   "chathooks_effects_skipped_total", "chathooks_timers_due", "chathooks_timers_overdue"):
        assert any(metric in n for n in dashboard_metrics()), f"no panel for {metric}"


@needs_prometheus
def test_a_real_prometheus_scrapes_the_web_and_answers_a_query(web, tmp_path: Path):
    body = fixture("incoming_chat")
    request = urllib.request.Request(f"{web}/webhooks/livechat", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(request, timeout=5))["status"] == "queued"
    port, target = free_port(), urllib.parse.urlsplit(web).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: 1s}}\nrule_files: [{ALERTS}]\n"
                      f"scrape_configs:\n  - job_name: chathooks\n    static_configs: [{{targets: ['{target}']}}]\n")
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=(tmp_path / "log").open("w"))
    try:
        query = urllib.parse.quote('chathooks_webhooks_queued_total{source="livechat"}')
        deadline, result = time.monotonic() + 30, []
        while time.monotonic() < deadline and not result:
            time.sleep(0.5)
            try:
                answer = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={query}",
                                                          timeout=2))
                result = answer["data"]["result"]
            except OSError:
                continue
        assert result, (tmp_path / "log").read_text()[-2000:]
        assert float(result[0]["value"][1]) == 1.0
    finally:
        prometheus.terminate()
        prometheus.wait(10)
