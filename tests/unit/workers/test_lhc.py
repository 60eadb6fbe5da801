"""The four automations on Live Helper Chat chats, through the dispatch table, live against FakeLhc."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from chathooks.events import epoch
from chathooks.platforms.lhc.adapter import to_delivery
from chathooks.platforms.lhc.rules import LhcRule
from tests.conftest import make_settings
from tests.fakes.lhc import FakeLhc
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import fixture
from tests.unit.workers.conftest import RULES, records, run_due
from workers.dispatch import handle_delivery
from workers.runtime import Runtime

SOURCE = "lhc"
CHAT = 5388
LHC_RULES = dataclasses.replace(RULES, lhc=LhcRule(subjects=(("bad-rating", 9), ("order-status", 7), ("refund", 3))))
AFTER = RULES.nudge.after_seconds


@pytest.fixture
def lhc() -> Iterator[FakeLhc]:
    with FakeLhc() as fake:
        fake.seed_chat({"id": CHAT, "status": 1, "iwh_id": 0, "nick": "Marie Curie", "email": "marie@example.org"})
        yield fake


@pytest.fixture
def rt(lhc, mailchimp: FakeMailchimp, fake_redis, clock) -> Runtime:  # type: ignore[no-untyped-def]
    settings = lhc.settings()
    env = {"LHC_API_URL": settings.api_url, "LHC_API_USER": settings.api_user, "LHC_API_KEY": settings.api_key,
           "MAILCHIMP_API_KEY": mailchimp.api_key, "MAILCHIMP_LIST_ID": mailchimp.list_id,
           "MAILCHIMP_API_URL": mailchimp.api_url}
    clock.now = fixture("chat_addmsguser", "lhc")["chat"]["time"]  # the fixtures' day: their times are its clock's
    return Runtime.build(make_settings(**env), fake_redis, rules=LHC_RULES, clock=clock)


def call(name: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(fixture(name, SOURCE))
    for part, fields in changes.items():
        body[part] = {**body[part], **fields}
    return body


def deliver(rt: Runtime, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        delivery = to_delivery(body, rt.settings, rt.rules.lhc)
        assert delivery is not None
        handle_delivery(delivery.to_message(), rt)


def mirror(lhc: FakeLhc, body: dict[str, Any]) -> dict[str, Any]:
    """LHC stores the call's message before it calls out."""
    lhc.add_message(CHAT, body["msg"])
    return body


def test_tags_are_applied_once_as_subjects_at_the_close_reconciled_with_the_chats_messages(rt, lhc):
    deliver(rt, mirror(lhc, call("chat_chat_started")))  # "a refund for order #1042"
    lhc.add_message(CHAT, {"id": 120041, "msg": "We apologise for the inconvenience", "user_id": 7, "time": 1})  # lost
    lhc.close(CHAT)
    deliver(rt, call("chat_close"), call("chat_close"))
    tags = [f for f in lhc.posted("system")]
    assert sorted(f["subjects_ids"] for f in tags) == ["3", "7"]
    assert all(f["no_event"] == "1" for f in tags)
    assert sorted(lhc.subjects[CHAT]) == [3, 7]
    # canned-apology (from the lost message) has no subject: recorded as skipped (at each close), never sent.
    skips = records(rt, "addmsgadmin", "skipped")
    assert skips and all(s["tag"] == "canned-apology" and "lhc.subjects" in s["reason"] for s in skips)


def test_a_whisper_and_a_system_message_tag_nothing(rt, lhc):
    deliver(rt, call("chat_web_add_msg_admin.whisper", msg={"msg": "refund it"}),
            call("chat_web_add_msg_admin.system", msg={"msg": "refund"}))
    lhc.close(CHAT)
    deliver(rt, call("chat_close"))
    assert lhc.posted() == []


def test_the_customer_is_synced_from_the_chats_email_once_and_again_when_it_changes(rt, mailchimp):
    deliver(rt, call("chat_chat_started"), call("chat_chat_started"), call("chat_close"), call("chat_modified"))
    assert sorted(r.json["email_address"] for r in mailchimp.calls("member")) == [
        "marie.curie@example.org", "marie@example.org"]
    assert mailchimp.calls("member")[0].json["merge_fields"] == {"FNAME": "Marie", "LNAME": "Curie"}


def customer_at(seconds: float, msg_id: int) -> dict[str, Any]:
    return call("chat_addmsguser", msg={"id": msg_id, "time": int(1766400000 + seconds)})


def test_a_silent_operator_gets_the_bot_to_nudge_once_by_our_timer(rt, lhc):
    deliver(rt, customer_at(0, 1))
    deliver(rt, call("chat_web_add_msg_admin.whisper", msg={"time": 1766400010}))  # internal: no reply
    deadline = 1766400000 + AFTER
    assert run_due(rt, deadline - 1) == []
    assert len(run_due(rt, deadline)) == 1
    (nudge,) = lhc.posted("bot")
    assert nudge == {"chat_id": str(CHAT), "msg": RULES.nudge.message, "sender": "bot", "no_event": "1"}
    # Our nudge comes back as a bot message: it neither answers nor reopens anything.
    deliver(rt, call("chat_web_add_msg_admin.bot", msg={"time": deadline + 1}))
    run_due(rt, deadline + 3600)
    assert len(lhc.posted("bot")) == 1


@pytest.mark.parametrize("closing", ["chat_web_add_msg_admin", "chat_explicitly_closed", "chat_visitor_regular_closed",
                                     "chat_close"])
def test_an_operator_reply_or_the_chats_end_stops_the_clock(rt, lhc, closing):
    deliver(rt, customer_at(0, 1), call(closing, msg={"time": 1766400010}))
    run_due(rt, 1766400000 + AFTER + 3600)
    assert lhc.posted("bot") == []


def test_a_channel_chats_nudge_goes_with_its_event(rt, lhc):
    lhc.chats[CHAT]["iwh_id"] = 4
    deliver(rt, call("chat_addmsguser_webhook", msg={"time": 1766400000}))
    run_due(rt, 1766400000 + AFTER)
    (nudge,) = lhc.posted("bot")
    assert "no_event" not in nudge


def test_a_bad_survey_is_answered_once_and_tagged(rt, lhc):
    deliver(rt, call("survey_filled"), call("survey_filled"))
    (reply,) = lhc.posted("bot")
    assert reply["msg"] == RULES.rating.bad
    (tag,) = lhc.posted("system")
    assert tag["subjects_ids"] == "9"


def test_a_survey_after_the_close_is_tagged_but_not_answered(rt, lhc):
    lhc.close(CHAT)
    deliver(rt, call("survey_filled"))
    assert lhc.posted("bot") == [] and lhc.posted("system")[0]["subjects_ids"] == "9"
    (skip,) = records(rt, "addmsgadmin", "skipped")
    assert skip["reason"] == "chat inactive"


def test_a_good_survey_gets_the_good_reply(rt, lhc):
    deliver(rt, call("survey_filled.good"))
    assert [f["msg"] for f in lhc.posted("bot")] == [RULES.rating.good]


def test_a_reply_whose_answer_was_lost_is_found_by_its_text_and_not_sent_again(rt, lhc):
    lhc.fail_next("addmsgadmin", status=None, delay=3, process=True)  # LHC posts it; the answer comes too late
    rt.outbound.chats(SOURCE).api.client._http.timeout = (1.0, 0.5)
    deliver(rt, call("survey_filled.good"))  # the attempt times out: retried later
    (retry,) = [m for m, _ in rt.redis.zrange(rt.scheduler.key, 0, -1, withscores=True)]
    run_due(rt, rt.clock() + 3600)
    assert [f["msg"] for f in lhc.posted("bot")] == [RULES.rating.good]  # one call, the one that landed
    assert retry


def test_the_deadline_counts_from_lhcs_own_message_time(rt, lhc):
    deliver(rt, customer_at(0, 1))
    (member, due) = rt.redis.zrange(rt.scheduler.key, 0, -1, withscores=True)[0]
    assert due == pytest.approx(epoch("2025-12-22T10:40:00Z") + AFTER)


def test_a_customer_who_closed_the_widget_and_wrote_again_is_nudged(rt, lhc):
    deliver(rt, customer_at(0, 1), call("chat_explicitly_closed", msg={"time": 1766400010}))
    deliver(rt, customer_at(600, 2))  # back, and waiting again
    run_due(rt, 1766400000 + 600 + AFTER)
    assert len(lhc.posted("bot")) == 1
