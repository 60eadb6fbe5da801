"""LiveChatV2API: a v2 chat acted on through the v3 Agent API, its thread found with get_chat."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chathooks.http import OutboundError
from chathooks.platforms.base import ChatRef
from chathooks.platforms.livechat.api import LiveChatAPI
from chathooks.platforms.livechat.client import LiveChatClient
from chathooks.platforms.livechat_v2 import api as v2_api
from chathooks.platforms.livechat_v2.api import LiveChatV2API
from tests.fakes.livechat import FakeLiveChat

CHAT = "PJ0MRSHTDG"
THREAD = "PJ0MRSHTDG_T2"  # the chat's latest (v3) thread
REF = ChatRef("livechat_v2", CHAT, CHAT)  # v2 events name the chat as its own thread


def seed(fake: FakeLiveChat, thread: str = THREAD, tags: list[str] | None = None, active: bool = False) -> None:
    fake.seed_chat({"id": CHAT, "users": [{"id": "S1", "type": "customer", "name": "Jane Roe"}],
                    "thread": {"id": thread, "active": active, "tags": tags or [], "events": [
                        {"id": f"{thread}_1", "type": "message", "author_id": "S1", "text": "I want a refund",
                         "created_at": "2025-09-01T10:00:01.000000Z"}]}})


@pytest.fixture
def livechat() -> Iterator[FakeLiveChat]:
    with FakeLiveChat() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def api(livechat) -> LiveChatV2API:
    return LiveChatV2API(LiveChatAPI(LiveChatClient(livechat.settings(), timeout=(2.0, 5.0)), livechat.bot_id))


def test_fetch_thread_is_the_chats_latest_thread(api, livechat):
    thread = api.fetch_thread(REF)
    assert thread.tags == frozenset() and [e.text for e in thread.history] == ["I want a refund"]
    assert {u.id for u in thread.users} == {"S1"}
    (call,) = livechat.calls("get_chat")
    assert call.json == {"chat_id": CHAT}


def test_tags_go_to_the_latest_thread_found_once_per_chat(api, livechat):
    api.fetch_thread(REF)
    api.tag(REF, "refund")
    api.tag(REF, "order-status")
    assert [r.json for r in livechat.calls("tag_thread")] == [
        {"chat_id": CHAT, "thread_id": THREAD, "tag": "refund"},
        {"chat_id": CHAT, "thread_id": THREAD, "tag": "order-status"}]
    assert len(livechat.calls("get_chat")) == 1
    assert api.tag_landed(REF, "refund") and not api.tag_landed(REF, "urgent")


def test_a_tag_without_a_fetch_first_looks_the_thread_up(api, livechat):
    api.tag(REF, "refund")
    assert livechat.chat(CHAT)["thread"]["tags"] == ["refund"]


def test_a_chat_livechat_does_not_know_cannot_be_tagged(api, livechat):
    with pytest.raises(OutboundError) as info:
        api.tag(ChatRef("livechat_v2", "NOPE", "NOPE"), "refund")
    assert info.value.type == "not_found" and not info.value.transient


def test_the_remembered_threads_are_bounded(api, monkeypatch):
    monkeypatch.setattr(v2_api, "REMEMBERED_THREADS", 2)
    for n in range(5):
        api._remember(f"C{n}", f"T{n}")
    assert list(api._threads) == ["C3", "C4"]


def test_without_credentials_it_reads_nothing():
    api = LiveChatV2API(LiveChatAPI(None, "bot"))
    assert not api.live and api.bot_ids == {"bot"}
    assert api.fetch_thread(REF) is None and api.thread_active(REF) is None
    assert not api.tag_landed(REF, "refund") and api.bot_status() is None


def test_it_names_the_livechat_methods_and_bot_status(api, livechat):
    assert (api.source, api.tag_method, api.message_method) == ("livechat_v2", "tag_thread", "send_event")
    assert api.bot_status() == "accepting_chats"
    assert api.thread_active(REF) is False  # the thread has ended


def test_a_returning_customers_newer_thread_is_never_taken_for_an_older_v2_conversation(api, livechat):
    """The scope names the conversation's start; a latest thread that began well after is another one."""
    livechat.chats[CHAT]["thread"]["created_at"] = "2025-09-01T12:00:00.000000Z"
    old = ChatRef("livechat_v2", CHAT, f"{CHAT}:1756720800")  # started 10:00
    with pytest.raises(OutboundError) as info:
        api.tag(old, "refund")
    assert info.value.type == "not_found" and livechat.calls("tag_thread") == []
    assert api.fetch_thread(old).history == ()
    current = ChatRef("livechat_v2", CHAT, f"{CHAT}:1756728000")  # started 12:00: that thread's
    api.tag(current, "refund")
    assert livechat.chat(CHAT)["thread"]["tags"] == ["refund"]
