"""``python -m bench --smoke`` runs every benchmark end to end (tiny counts, no speed assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import amqp_target

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_smoke_run_measures_every_figure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((tmp_path / "latest.json").read_text())
    figures = results["figures"]
    on_rabbitmq = {"B1 amqp", "B3 amqp", "B4 amqp"} if amqp_target.reachable() else set()
    pinned = {"B4 pinned", "B4 ×4 pinned"} if len(os.sched_getaffinity(0)) > 1 else set()
    # reported beside B1, B3 and B4, without goals of their own
    beside = {"B1 WAIT", "B3 drain", "B3 ceiling", "B3 of ceiling", "B3 events", "B4 ×4"} | pinned | on_rabbitmq
    goaled = {"B1", "B1L", "B1L v2", "B1L lhc", "B1L chatbot", "B1N", "B2", "B3", "B3T", "B4"}
    assert set(figures) == goaled | beside | {"B5", "B6"}
    for key in goaled | beside:
        value = figures[key]["value"]
        assert 0 < value["min"] <= value["median"] <= value["max"], key
        if key in goaled:
            assert figures[key]["goal"] and isinstance(figures[key]["met"], bool)
    assert figures["B5"]["value"]["median"] > 0
    assert figures["B5"]["returned_to_baseline"] is True
    assert figures["B5"]["profile_bytes_per_customer"] > 0
    assert figures["B5"]["trigger_state_bytes_per_chat"] > 0
    assert figures["B6"]["value"]["median"] > 0 and isinstance(figures["B6"]["met"], bool)
    assert {"cpu", "cores", "memory_gib"} <= set(results["machine"])
    for component in ("python", "flask", "celery", "kombu", "redis", "redis server", "gunicorn", "load generator"):
        assert results["versions"][component], component
    assert (tmp_path / "ingress.png").read_bytes().startswith(b"\x89PNG")
    assert "B1" in done.stdout and "B5" in done.stdout
