"""`chathooks simulate` in dry-run: a newcomer sees every automation fire, with nothing external."""

from __future__ import annotations

import io

import pytest

from cli import simulate
from tests.integration.beat import start_beat
from tests.integration.processes import start_web, start_worker

pytestmark = pytest.mark.integration


def test_simulate_shows_every_automation_in_dry_run(tmp_path, pipeline_env, processes):
    web, url = start_web(pipeline_env, tmp_path)
    processes += [web, start_worker(pipeline_env, tmp_path), start_beat(pipeline_env, tmp_path)]
    out = io.StringIO()
    assert simulate.run(url, out, environ=pipeline_env) == 0
    report = out.getvalue()
    assert report.count(" 200 ") == 7, report
    done = report.split("What the workers did", 1)[1]
    for expected in ("upsert_member", "Thanks for waiting", "We're sorry", '"tag": "refund"',
                     '"tag": "order-status"', '"tag": "canned-apology"', '"tag": "bad-rating"'):
        assert expected in done, report
    assert "sent " not in done, "dry-run sends nothing"
    assert done.count("Thanks for waiting") == 1
