"""End to end: side effects refused for good land in the dead-letter store; ``chathooks dlq`` replays and purges them.

The pipeline is test_automations' (real gunicorn, Celery worker and beat, the real Redis, FakeLiveChat on
loopback); the CLI runs as its own process, configured by the environment like the others.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.fakes.livechat import FakeLiveChat
from tests.helpers import wait_for
from tests.integration.conversation import Conversation
from tests.integration.processes import ROOT, Process, start_worker
from tests.integration.system import (
    NUDGE,
    System,
    bot_messages,
    happen,
    sends,
    start_silence,
)

pytestmark = pytest.mark.integration

TAGS = ["order-status", "refund"]  # what the opening message matches


def dlq(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    """``chathooks dlq ARGS`` as an operator runs it, against the system's Redis and key prefix."""
    return subprocess.run([sys.executable, "-m", "cli", "dlq", *args], env={**os.environ, **system.env},
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def gauge(system: System) -> float:
    """``chathooks_dead_letters`` as /metrics reports it."""
    text = requests.get(f"{system.url}/metrics", timeout=10).text
    found = re.search(r"^chathooks_dead_letters (\S+)$", text, re.M)
    assert found, text
    return float(found[1])


def dead_lettered(system: System, n: int, timeout: float) -> list[dict]:  # type: ignore[type-arg]
    wait_for(lambda: len(system.dead_letters()) >= n, timeout=timeout, what=f"{n} dead letter(s)")
    system.settle()
    items = system.dead_letters()
    assert len(items) == n, items
    return items


def test_a_refused_nudge_replayed_once_runs_once_even_when_no_worker_was_running(launch, processes: list[Process],
                                                                                  tmp_path: Path):
    after = 2
    system, lc = launch("3.5", after)
    conv = Conversation("3.5")
    lc.fail_next("send_event", error_type="authorization", times=100)
    deadline = start_silence(system, lc, conv, after)
    [item] = dead_lettered(system, 1, timeout=deadline - time.time() + 8)

    assert (item["handler"], item["attempts"], item["replays"]) == ("triggers.act", 1, 0)
    assert (item["event"]["chat_id"], item["event"]["thread_id"]) == (conv.chat_id, conv.thread_id)
    [error] = item["errors"]
    assert (error["service"], error["method"], error["type"]) == ("livechat", "send_event", "authorization")
    assert deadline <= item["first_failed_at"] == item["last_failed_at"] == error["at"] <= item["dead_at"]
    assert gauge(system) == 1
    listed = dlq(system, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [item]
    table = dlq(system, "list", "--chat", conv.chat_id)
    row = table.stdout.splitlines()[1]
    assert row.split()[0] == item["id"] and row.split()[2] == "triggers.act"
    assert row.endswith("livechat send_event authorization (403, final): injected authorization")

    # LiveChat takes the bot's messages again; the replay is made while no worker runs: it waits in Redis.
    lc.reset_faults()
    system.worker.signal(signal.SIGTERM)
    system.worker.proc.wait(15)
    replayed = dlq(system, "replay", item["id"])
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith(f"replayed {item['id']} (triggers.act on trigger_fired, chat {conv.chat_id})")
    assert system.dead_letters() == [] and gauge(system) == 0
    assert [m for m, _ in system.schedule() if m.startswith("retry|")], system.schedule()
    assert len(sends(lc, NUDGE)) == 1

    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    wait_for(lambda: bot_messages(lc, conv), timeout=20, what="the replayed nudge")
    again = dlq(system, "replay", item["id"])
    assert again.returncode == 1 and "no dead letter" in again.stderr, again
    system.settle()
    assert len(sends(lc, NUDGE)) == 2, "one refused, one delivered, nothing more"
    assert [e["text"] for e in bot_messages(lc, conv)] == [NUDGE]
    assert system.dead_letters() == [] and gauge(system) == 0


def test_replay_all_by_handler_then_purge_the_rest(launch):
    after = 2
    system, lc = launch("3.6", after)
    conv = Conversation("3.6")
    lc.fail_next("send_event", error_type="authorization", times=100)
    lc.fail_next("tag_thread", error_type="validation", times=100)
    deadline = start_silence(system, lc, conv, after)
    dead_lettered(system, 1, timeout=deadline - time.time() + 8)
    happen(system, lc, conv, conv.deactivated())
    items = {i["handler"]: i for i in dead_lettered(system, 2, timeout=15)}
    assert set(items) == {"triggers.act", "tagging.thread_ended"}
    assert [e["type"] for e in items["tagging.thread_ended"]["errors"]] == ["validation"]
    assert gauge(system) == 2
    assert sorted(r.json["tag"] for r in lc.calls("tag_thread")) == TAGS  # each refused once

    lc.reset_faults()
    replayed = dlq(system, "replay", "--all", "--handler", "tagging.thread_ended")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines()[-1].startswith("1 replayed")
    wait_for(lambda: len(_tags(lc, conv)) == 2, timeout=15, what="the replayed tags")
    system.settle()
    assert _tags(lc, conv) == TAGS
    assert Counter(r.json["tag"] for r in lc.calls("tag_thread")) == Counter(TAGS * 2)
    assert [i["handler"] for i in system.dead_letters()] == ["triggers.act"] and gauge(system) == 1

    purged = dlq(system, "purge", "--older-than", "0s")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.splitlines() == [
        f"purged {items['triggers.act']['id']} (triggers.act on trigger_fired, chat {conv.chat_id})", "1 purged"]
    assert system.dead_letters() == [] and gauge(system) == 0
    nothing = dlq(system, "purge", "--older-than", "0s")
    assert nothing.returncode == 1 and nothing.stderr == "chathooks: no dead letter matched; nothing purged\n"
    system.settle()
    assert len(sends(lc, NUDGE)) == 1 and bot_messages(lc, conv) == []


def _tags(lc: FakeLiveChat, conv: Conversation) -> list[str]:
    return sorted(lc.chat(conv.chat_id)["thread"]["tags"])
