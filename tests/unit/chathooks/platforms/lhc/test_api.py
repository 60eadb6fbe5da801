"""LhcAPI: bot messages as sender=bot, tags as subjects, a landed message found by its text since the attempt."""

from __future__ import annotations

import time

import pytest

from chathooks.events import Role
from chathooks.platforms.base import ChatRef
from chathooks.platforms.lhc.api import LhcAPI
from chathooks.platforms.lhc.client import LhcClient
from chathooks.platforms.lhc.rules import LhcRule
from tests.fakes.lhc import form

REF = ChatRef("lhc", "5388", "5388")
RULE = LhcRule(subjects=(("order-status", 7), ("refund", 3)))


@pytest.fixture
def api(lhc) -> LhcAPI:  # type: ignore[no-untyped-def]
    return LhcAPI(LhcClient(lhc.settings(), timeout=(2.0, 2.0)), RULE)


def test_a_web_chats_bot_message_goes_without_an_event(api, lhc):
    api.post_bot_message(REF, "Thanks for waiting", custom_id="nudge:5388:1")
    assert [form(r) for r in lhc.calls("addmsgadmin")] == [
        {"chat_id": "5388", "msg": "Thanks for waiting", "sender": "bot", "no_event": "1"}]


def test_a_channel_chats_bot_message_goes_with_its_event_so_lhc_relays_it(api, lhc):
    lhc.chats[5388]["iwh_id"] = 4
    api.post_bot_message(REF, "Thanks for waiting", custom_id="nudge:5388:1")
    assert "no_event" not in form(lhc.calls("addmsgadmin")[0])


def test_never_as_an_operator_so_a_pending_chat_stays_pending(api, lhc):
    lhc.chats[5388]["status"] = 0
    api.post_bot_message(REF, "Hello", custom_id="x")
    assert lhc.chats[5388]["status"] == 0


def test_a_landed_message_is_ours_with_the_text_since_the_attempt(api, lhc):
    began = time.time()
    assert not api.bot_message_landed(REF, "x", "Thanks for waiting", began)
    api.post_bot_message(REF, "Thanks for waiting", custom_id="x")
    assert api.bot_message_landed(REF, "x", "Thanks for waiting", began)
    assert not api.bot_message_landed(REF, "x", "Another text", began)
    assert not api.bot_message_landed(REF, "x", "Thanks for waiting", began + 3600), "a later attempt's is not ours"


def test_an_operator_saying_the_same_is_not_our_message(api, lhc):
    lhc.add_message(5388, {"id": 1, "msg": "Thanks for waiting", "user_id": 7, "time": int(time.time())})
    assert not api.bot_message_landed(REF, "x", "Thanks for waiting", time.time() - 60)


def test_tags_are_subjects_attached_once_by_a_system_message(api, lhc):
    assert api.untaggable("refund") is None and "lhc.subjects" in api.untaggable("urgent")
    assert api.tag_landed(REF, "refund")  # subject 3 is on the chat already
    api.tag(REF, "refund")
    assert lhc.calls("addmsgadmin") == []
    api.tag(REF, "order-status")
    (posted,) = [form(r) for r in lhc.calls("addmsgadmin")]
    assert (posted["sender"], posted["subjects_ids"], posted["no_event"]) == ("system", "7", "1")
    assert api.tag_landed(REF, "order-status")


def test_fetch_thread_is_the_messages_normalised_and_the_tags_by_subject(api, lhc):
    thread = api.fetch_thread(REF)
    assert [(e.author_role, e.text) for e in thread.history] == [
        (Role.CUSTOMER, "Hi, I want a refund"), (Role.INTERNAL, "Offer it"),
        (Role.AGENT, "We apologise for the inconvenience")]
    assert thread.tags == {"refund"} and thread.active
    lhc.close(5388)
    assert not api.fetch_thread(REF).active and api.thread_active(REF) is False


def test_without_credentials_it_reads_nothing():
    api = LhcAPI(None, RULE)
    assert not api.live and api.fetch_thread(REF) is None and api.thread_active(REF) is None
    assert not api.bot_message_landed(REF, "x", "t", 0) and not api.tag_landed(REF, "refund")
    assert api.bot_status() == "accepting_chats" and api.bot_id


def test_the_api_names_its_method(api):
    assert (api.source, api.tag_method, api.message_method) == ("lhc", "addmsgadmin", "addmsgadmin")
