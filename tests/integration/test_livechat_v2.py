"""End to end: a legacy LiveChat v2 chat through the real ingress, Redis, Celery worker and beat.

The chat starts, its tags change, it ends with a transcript (visitor, agent and a supervisor's
whisper), and a ticket follows; every webhook is delivered twice (a first round, then LiveChat's
retries of all of them). FakeLiveChat knows the chat as the v3 Agent API does once it has ended
(one inactive thread), FakeMailchimp takes the list upserts; both record every call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import fixture
from tests.integration.processes import Process
from tests.integration.system import MEMBER_TAGS, READS, System, automation_env, events_of, write_rules

pytestmark = pytest.mark.integration

SOURCE = "livechat_v2"
CHAT = "PJ0MRSHTDG"
THREAD = "PJ0MRSHTDG_K7"  # the chat's thread in the v3 Agent API
AUTH = ("livechat", "v2-hooks-pa55")
# The supervisor's whisper says what the escalation rule looks for: it must still tag nothing.
WHISPER = "Escalate this to the support team"


@pytest.fixture
def v2_system(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
              mailchimp: FakeMailchimp) -> Iterator[tuple[System, FakeLiveChat]]:
    with FakeLiveChat() as lc:
        lc.seed_chat({"id": CHAT, "users": [], "thread": {"id": THREAD, "active": False, "tags": []}})
        env = automation_env(pipeline_env, lc, mailchimp, write_rules(tmp_path / "rules.json", after_seconds=120))
        env["INGRESS_BASIC_AUTH"] = ":".join(AUTH)
        system = System(env, tmp_path, processes)
        system.http.auth = AUTH
        yield system, lc


def webhooks() -> list[dict[str, Any]]:
    """The chat's v2 webhooks in the order LiveChat sends them."""
    changed = fixture("chat_changed", SOURCE)
    changed["chat"]["tags"] = ["refund"]  # an agent tagged it during the chat: known, never sent again
    ended = fixture("chat_ended", SOURCE)
    ended["chat"]["messages"][1]["text"] = WHISPER
    return [fixture("chat_started", SOURCE), fixture("visitor_queued", SOURCE), changed, ended,
            fixture("ticket_created", SOURCE)]


def member(mc: FakeMailchimp, email: str) -> str:
    return f"/3.0/lists/{mc.list_id}/members/{hashlib.md5(email.encode()).hexdigest()}"


def test_a_v2_chat_delivered_twice_is_tagged_and_synced_exactly_once(v2_system, mailchimp):
    system, lc = v2_system
    url = f"{system.url}/webhooks/livechat/v2"
    first = [system.http.post(url, json=body, timeout=10) for body in webhooks()]
    retries = [system.http.post(url, json=body, timeout=10) for body in webhooks()]
    assert [(r.status_code, r.json()["status"]) for r in first] == [(200, "queued")] * 5
    assert [r.json() for r in retries] == [{"status": "duplicate", "id": r.json()["id"]} for r in first]
    system.settle(timeout=40)

    assert not lc.errors and not mailchimp.errors, (lc.errors, mailchimp.errors)
    assert system.dead_letters() == [], system.dead_letters()
    writes = sorted(json.dumps([r.route, r.json], sort_keys=True) for r in lc.calls() if r.route not in READS)
    # From the transcript: order-status and refund (the visitor), canned-apology (the agent); refund was
    # already on the chat; the whisper matches escalation but is internal.
    assert writes == [json.dumps(["tag_thread", {"chat_id": CHAT, "thread_id": THREAD, "tag": tag}], sort_keys=True)
                      for tag in ("canned-apology", "order-status")]
    assert {r.route for r in lc.calls()} <= READS | {"tag_thread"}
    with lc.lock:
        assert sorted(lc.chats[CHAT]["thread"]["tags"]) == ["canned-apology", "order-status"]

    calls = sorted((r.method, r.path, json.dumps(r.json, sort_keys=True)) for r in mailchimp.calls())
    tags = json.dumps({"tags": [{"name": t, "status": "active"} for t in MEMBER_TAGS]}, sort_keys=True)
    assert calls == sorted([
        ("PUT", member(mailchimp, "jane@example.org"), json.dumps(
            {"email_address": "jane@example.org", "status_if_new": "subscribed",
             "merge_fields": {"FNAME": "Jane", "LNAME": "Roe"}}, sort_keys=True)),
        ("POST", member(mailchimp, "jane@example.org") + "/tags", tags),
        ("PUT", member(mailchimp, "john.doe@example.net"), json.dumps(
            {"email_address": "john.doe@example.net", "status_if_new": "subscribed",
             "merge_fields": {"FNAME": "John", "LNAME": "Doe"}}, sort_keys=True)),
        ("POST", member(mailchimp, "john.doe@example.net") + "/tags", tags),
    ])
    timeline = events_of(system.redis, f"{system.prefix}timeline:{CHAT}")
    assert [e["kind"] for e in timeline] == ["chat_started"] + ["message"] * 5 + ["chat_ended", "tagged"]  # by time
    assert [e["author_role"] for e in timeline if e["kind"] == "message"] == [
        "customer", "internal", "agent", "customer", "agent"]
