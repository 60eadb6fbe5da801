"""LiveChatAPI: handlers' reads and writes on LiveChat v3 chats, against FakeLiveChat."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chathooks.events import Kind, Role
from chathooks.platforms.base import ChatRef
from chathooks.platforms.livechat.api import LiveChatAPI
from chathooks.platforms.livechat.client import LiveChatClient
from tests.fakes.livechat import FakeLiveChat
from tests.unit.workers.conftest import BOT_ID, CHAT_ID, CUSTOMER_ID, THREAD_ID, seed

REF = ChatRef("livechat", CHAT_ID, THREAD_ID)


@pytest.fixture
def livechat(request: pytest.FixtureRequest) -> Iterator[FakeLiveChat]:
    """FakeLiveChat; parametrize indirectly with "3.5" or "3.6" (default)."""
    with FakeLiveChat(api_version=getattr(request, "param", "3.6")) as fake:
        yield fake


@pytest.fixture
def api(livechat) -> LiveChatAPI:
    seed(livechat)
    return LiveChatAPI(LiveChatClient(livechat.settings(), timeout=(2.0, 5.0)), livechat.bot_id)


def test_without_a_client_it_reads_nothing_and_is_not_live():
    api = LiveChatAPI(None, BOT_ID)
    assert not api.live and api.bot_ids == {BOT_ID}
    assert api.fetch_thread(REF) is None and api.thread_active(REF) is None and api.bot_status() is None
    assert not api.bot_message_landed(REF, "x") and not api.tag_landed(REF, "refund")


def test_fetch_thread_normalises_the_history_and_knows_the_users_and_tags(api, livechat):
    seed(livechat, tags=["refund"])
    thread = api.fetch_thread(REF)
    assert thread.active and thread.tags == {"refund"}
    assert CUSTOMER_ID in {u.id for u in thread.users}
    messages = [e for e in thread.history if e.kind is Kind.MESSAGE]
    assert messages and {e.author_role for e in messages} <= {Role.CUSTOMER, Role.AGENT, Role.BOT}


def test_our_bots_messages_in_the_history_are_the_bots(api, livechat):
    api.post_bot_message(REF, "An agent will be with you shortly.", custom_id="nudge:T:1")
    (posted,) = [e for e in api.fetch_thread(REF).history if e.text == "An agent will be with you shortly."]
    assert posted.author_role is Role.BOT


def test_another_thread_than_the_one_asked_for_gives_only_its_users(api):
    thread = api.thread_of(api.get_chat(CHAT_ID), "OTHERTHREAD")
    assert thread.users and thread.history == () and thread.tags == frozenset() and not thread.active


@pytest.mark.parametrize("livechat", ["3.5", "3.6"], indirect=True)
def test_bot_messages_are_authored_by_the_bot(api, livechat):
    api.post_bot_message(REF, "An agent will be with you shortly.", custom_id="nudge:T:1")
    posted = livechat.chat(CHAT_ID)["thread"]["events"][-1]
    assert posted["author_id"] == BOT_ID
    assert posted["text"] == "An agent will be with you shortly."
    assert posted["custom_id"] == "nudge:T:1"
    assert posted["visibility"] == "all"
    (call,) = livechat.calls("send_event")
    if livechat.api_version == "3.5":
        assert call.headers["X-Author-Id"] == BOT_ID
    else:
        assert call.headers["Authorization"].startswith("Bearer bot.")


def test_bot_status(api, livechat):
    assert api.bot_status() == "accepting_chats"
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"
    assert api.bot_status() == "not_accepting_chats"
    assert LiveChatAPI(api.client, "unknown-bot").bot_status() is None


def test_bot_status_spelled_with_a_space_is_normalised(api, livechat):
    livechat.routing_statuses[BOT_ID] = "accepting chats"
    assert api.bot_status() == "accepting_chats"


def test_a_bot_message_landed_is_found_by_its_custom_id(api):
    assert not api.bot_message_landed(REF, "nudge:T:1")
    api.post_bot_message(REF, "hi", custom_id="nudge:T:1")
    assert api.bot_message_landed(REF, "nudge:T:1")
    assert not api.bot_message_landed(REF, "nudge:T:2")


def test_a_tag_landed_is_read_from_the_threads_tags(api):
    assert not api.tag_landed(REF, "refund")
    api.tag(REF, "refund")
    assert api.tag_landed(REF, "refund")
    assert not api.tag_landed(REF, "order-status")


def test_the_thread_is_active_only_while_it_is_the_chats_latest_and_open(api, livechat):
    assert api.thread_active(REF) is True
    assert api.thread_active(ChatRef("livechat", CHAT_ID, "OLDERTHREAD")) is False
    seed(livechat, active=False)
    assert api.thread_active(REF) is False
