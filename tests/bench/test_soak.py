"""The soak's smoke run: a few hundred webhooks through the real pipeline, and the ledger balances.

Speed is reported, never asserted: only the checks (nothing lost, nothing doubled, memory back to
baseline) decide.
"""

from __future__ import annotations

import json

import pytest

from bench import soak

pytestmark = pytest.mark.integration


def test_smoke_soak_balances_its_ledger_and_returns_redis_to_baseline(tmp_path):
    out = tmp_path / "soak.json"
    report = soak.run(soak.Options(webhooks=300, smoke=True, posters=8, out=out))
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed, json.dumps({k: report[k] for k in ("answers", "server", "pipeline", "memory")}, indent=1)
    assert report["scenario"]["repeats"] > 0 and report["scenario"]["abandoned_chats"] > 0
    assert report["answers"]["duplicate"] == report["scenario"]["repeats"]
    assert json.loads(out.read_text())["ok"]
