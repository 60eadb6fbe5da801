"""End to end: a Live Helper Chat conversation through the real ingress, Redis, Celery worker and beat.

FakeLhc plays LHC's REST API on loopback (each message is stored there before its hook calls
out, as LHC does), FakeMailchimp the list; both record every call. The conversation: the chat
starts with an email and a customer message, an operator answers, a supervisor whispers, the
customer asks again and nobody answers (a nudge; its echo comes back), a message LHC never sent
out, the close, a bad survey. Every delivery comes twice, in order or shuffled; then faults.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.lhc import FakeLhc
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import fixture, wait_for
from tests.integration.processes import Process
from tests.integration.system import BAD, NUDGE, SHUFFLE_SEED, System, write_rules

pytestmark = pytest.mark.integration

SOURCE = "lhc"
TOKEN = "lhc-e2e-bearer"
CHAT = 7701
SUBJECTS = {"refund": 3, "order-status": 7, "urgent": 5, "canned-apology": 8, "shipping": 6, "bad-rating": 9}
OPENING = "Hi, I want a [b]refund[/b] for order #1042"
APOLOGY = "We apologise for the inconvenience, checking now."
WHISPER = "Escalate this to the support team"  # escalation's keywords: internal, so it tags nothing
FOLLOW_UP = "Is there any update? It's urgent."
LOST = "Also, the delivery never arrived."  # stored in LHC, its hook never reached chathooks: shipping
EXPECTED = {"refund", "order-status", "canned-apology", "urgent", "shipping", "bad-rating"}


class LhcChat:
    """One LHC chat's hook calls, built from the fixtures, with LHC's state mirrored into FakeLhc."""

    def __init__(self, lhc: FakeLhc, t0: float) -> None:
        self.lhc, self.t0, self._ids = lhc, int(t0), iter(range(300_001, 400_000))
        lhc.seed_chat({"id": CHAT, "status": 1, "iwh_id": 0, "nick": "Marie Curie", "email": "marie@example.org",
                       "time": self.t0})

    def _call(self, name: str, msg: dict[str, Any] | None = None, **chat: Any) -> dict[str, Any]:
        body = copy.deepcopy(fixture(name, SOURCE))
        body["chat"].update(id=CHAT, time=self.t0, email="marie@example.org", **chat)
        if msg is not None:
            body["msg"].update(msg)
        return body

    def message(self, name: str, text: str, user_id: int, at: float, meta: str = "", store: bool = True,
                ) -> dict[str, Any]:
        msg = {"id": next(self._ids), "msg": text, "user_id": user_id, "time": int(at), "meta_msg": meta,
               "name_support": "Agent Smith" if user_id > 0 else ""}
        if store:
            self.lhc.add_message(CHAT, msg)
        return self._call(name, msg)

    def started(self) -> dict[str, Any]:
        return self.message("chat_chat_started", OPENING, 0, self.t0 + 1)

    def closed(self) -> dict[str, Any]:
        self.lhc.close(CHAT)
        return self._call("chat_close", status=2, cls_time=self.lhc.chats[CHAT]["cls_time"])

    def survey(self, stars: int) -> dict[str, Any]:
        return self._call("survey_filled", status=2, cls_time=self.lhc.chats[CHAT]["cls_time"],
                          ) | {"survey_item": {**fixture("survey_filled", SOURCE)["survey_item"], "max_stars_1": stars}}


@pytest.fixture
def launch(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
           mailchimp: FakeMailchimp) -> Iterator[Callable[..., tuple[System, FakeLhc]]]:
    """``launch(after_seconds, **env)``: FakeLhc, a rules file with LHC subjects, and the pipeline's processes."""
    fakes: list[FakeLhc] = []

    def launch(after_seconds: int, **env: str) -> tuple[System, FakeLhc]:
        lhc = FakeLhc().start()
        fakes.append(lhc)
        rules = write_rules(tmp_path / "rules.json", after_seconds)
        rules.write_text(json.dumps({**json.loads(rules.read_text()), "lhc": {"subjects": SUBJECTS}}))
        api = lhc.settings()
        system = System({
            **pipeline_env, "CHATHOOKS_RULES": str(rules), "CHATHOOKS_DRY_RUN": "0",
            "LHC_WEBHOOK_SECRETS": TOKEN, "LHC_API_URL": api.api_url, "LHC_API_USER": api.api_user,
            "LHC_API_KEY": api.api_key, "MAILCHIMP_API_KEY": mailchimp.api_key,
            "MAILCHIMP_LIST_ID": mailchimp.list_id, "MAILCHIMP_API_URL": mailchimp.api_url, **env,
        }, tmp_path, processes)
        system.http.headers["Authorization"] = f"Bearer {TOKEN}"
        return system, lhc

    yield launch
    for lhc in fakes:
        lhc.stop()


def post(system: System, body: dict[str, Any]) -> str:
    response = system.http.post(f"{system.url}/webhooks/lhc", json=body, timeout=10)
    assert response.status_code == 204 and response.content == b"", (response.status_code, response.content)
    return response.headers["X-Chathooks-Status"]


def writes(lhc: FakeLhc) -> list[tuple[str, str, str]]:
    """Every addmsgadmin call as (sender, message or subjects, no_event), sorted."""
    return sorted((f["sender"], f.get("subjects_ids") or f["msg"], f.get("no_event", "")) for f in lhc.posted())


def expected_writes(nudge: bool) -> list[tuple[str, str, str]]:
    tags = [("system", str(SUBJECTS[tag]), "1") for tag in EXPECTED]
    return sorted(tags + ([("bot", NUDGE, "1")] if nudge else []))


def assert_synced_once(mailchimp: FakeMailchimp) -> None:
    (put,) = mailchimp.calls("member")
    assert put.json == {"email_address": "marie@example.org", "status_if_new": "subscribed",
                        "merge_fields": {"FNAME": "Marie", "LNAME": "Curie"}}


def test_a_conversation_delivered_twice_tags_syncs_nudges_and_reacts_once(launch, mailchimp):
    after = 3
    system, lhc = launch(after)
    chat = LhcChat(lhc, time.time())

    def twice(body: dict[str, Any]) -> None:
        assert [post(system, body), post(system, body)] == ["queued", "duplicate"]

    twice(chat.started())
    twice(chat.message("chat_web_add_msg_admin", APOLOGY, 7, time.time()))
    twice(chat.message("chat_web_add_msg_admin.whisper", WHISPER, 9, time.time(), '{"content":{"whisper":true}}'))
    asked = time.time()
    twice(chat.message("chat_addmsguser", FOLLOW_UP, 0, asked))
    wait_for(lambda: lhc.posted("bot"), timeout=after + 10, what="the nudge")
    nudge_at = lhc.calls("addmsgadmin")[-1].time
    assert int(asked) + after <= nudge_at <= int(asked) + after + 2.5, nudge_at - asked  # LHC times are whole seconds
    (stored,) = [m for m in lhc.messages[CHAT] if m["user_id"] == "-2"]
    twice(chat._call("chat_web_add_msg_admin.bot", {**stored, "id": int(stored["id"]), "user_id": -2}))  # our echo
    chat.message("chat_addmsguser", LOST, 0, time.time(), store=True)  # never delivered
    twice(chat.closed())
    twice(chat.survey(stars=2))
    wait_for(lambda: len(lhc.posted("system")) >= len(EXPECTED), timeout=20, what="every tag")
    system.settle()

    assert not lhc.errors and not mailchimp.errors
    assert system.dead_letters() == []
    assert writes(lhc) == expected_writes(nudge=True)
    assert sorted(lhc.subjects[CHAT]) == sorted(SUBJECTS.values())
    assert not [f for f in lhc.posted("bot") if f["msg"] == BAD], "the chat had closed: no reply, the bad tag only"
    assert_synced_once(mailchimp)


def test_deliveries_twice_and_shuffled_make_the_same_calls(launch, mailchimp):
    """No silence reaches the 30 s threshold in event time, so the order of the deliveries decides nothing."""
    system, lhc = launch(30)
    t0 = time.time() - 20
    chat = LhcChat(lhc, t0)
    steps = [chat.started(), chat.message("chat_web_add_msg_admin", APOLOGY, 7, t0 + 2),
             chat.message("chat_web_add_msg_admin.whisper", WHISPER, 9, t0 + 3, '{"content":{"whisper":true}}'),
             chat.message("chat_addmsguser", FOLLOW_UP, 0, t0 + 4),
             chat.message("chat_web_add_msg_admin", "Found it: a refund is on its way.", 7, t0 + 6)]
    chat.message("chat_addmsguser", LOST, 0, t0 + 7)  # never delivered
    steps += [chat.closed(), chat.survey(stars=2)]
    deliveries = [step for step in steps for _ in range(2)]
    random.Random(SHUFFLE_SEED).shuffle(deliveries)
    statuses = [post(system, body) for body in deliveries]
    assert statuses.count("queued") == len(steps) and statuses.count("duplicate") == len(steps)
    wait_for(lambda: len(lhc.posted("system")) >= len(EXPECTED), timeout=20, what="every tag")
    system.settle()
    assert system.dead_letters() == []
    assert writes(lhc) == expected_writes(nudge=False)
    assert_synced_once(mailchimp)


def test_faults_end_in_exactly_one_effect(launch, mailchimp):
    """500 then OK on the first tag, error: true with HTTP 200 on a read, a slow answer on the survey's tag."""
    # Short client timeouts (a quarter of the task time limit), so the slow answer times out.
    system, lhc = launch(30, CHATHOOKS_TASK_TIME_LIMIT="8", CHATHOOKS_VISIBILITY_TIMEOUT="60")
    t0 = time.time() - 20
    chat = LhcChat(lhc, t0)
    lhc.fail_next("addmsgadmin", status=500)  # the first write fails once
    lhc.fail_next("fetchchatmessages", status=200, body={"error": True, "result": "Database is busy"})
    for body in (chat.started(), chat.message("chat_web_add_msg_admin", APOLOGY, 7, t0 + 2)):
        post(system, body)
    post(system, chat.closed())
    wait_for(lambda: {f.get("subjects_ids") for f in lhc.posted("system")} >= {"3", "7", "8"}, timeout=40,
             what="the tags, after the retries")
    lhc.fail_next("addmsgadmin", status=None, delay=6, process=True)  # carried out, answered too late
    post(system, chat.survey(stars=2))
    wait_for(lambda: 9 in lhc.subjects[CHAT], timeout=20, what="the bad tag")
    system.settle(timeout=60)
    assert system.dead_letters() == []
    assert sorted(lhc.subjects[CHAT]) == [3, 7, 8, 9]
    landed = [f["subjects_ids"] for f in lhc.posted("system") if f.get("subjects_ids")]
    assert sorted(set(landed)) == ["3", "7", "8", "9"]
    # The 500 was retried (two calls for its tag), the slow one was found on the chat and not sent again.
    assert landed.count("9") == 1
    assert_synced_once(mailchimp)
