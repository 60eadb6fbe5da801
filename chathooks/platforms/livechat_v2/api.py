"""Acting on v2 chats (``ChatAPI``) through the v3 Agent API: the v2 chat's thread is found with ``get_chat``.

A v2 webhook names a chat, never a thread; v2 and v3 share chat ids, and the thread a v2 chat
ended with is that chat's latest, unless the customer has come back since: a latest thread that
began well after the v2 chat did is another conversation, and the v2 chat's is not acted on (the
work is dead-lettered, saying so) rather than the wrong thread tagged. The thread found is
remembered for the calls that follow (a chat's end makes several: fetch, then one tag each).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

import redis

from chathooks.events import epoch
from chathooks.http import OutboundError, Timeout
from chathooks.platforms.base import ChatRef, Thread
from chathooks.platforms.livechat.api import LiveChatAPI
from chathooks.platforms.livechat_v2.adapter import SOURCE
from chathooks.rules import Rules
from chathooks.settings import Settings

REMEMBERED_THREADS = 1024
SAME_CONVERSATION = 120.0  # seconds a v3 thread may begin after its v2 chat's start and still be that chat's


class LiveChatV2API:
    """``ChatAPI`` for v2 chats over a ``LiveChatAPI``."""

    source = SOURCE
    tag_method = LiveChatAPI.tag_method
    message_method = LiveChatAPI.message_method
    no_bot = LiveChatAPI.no_bot

    def __init__(self, v3: LiveChatAPI) -> None:
        self.v3 = v3
        self.bot_id = v3.bot_id
        self.bot_ids = v3.bot_ids
        self._threads: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def build(cls, settings: Settings, state: redis.Redis, timeout: Timeout,
              rules: Rules | None = None) -> LiveChatV2API:
        return cls(LiveChatAPI.build(settings, state, timeout))

    @property
    def live(self) -> bool:
        return self.v3.live

    def _latest(self, chat: ChatRef) -> tuple[dict[str, Any] | None, str | None]:
        """``get_chat``'s answer and the id of the v2 chat's thread in it (None: not this conversation's)."""
        data = self.v3.get_chat(chat.chat_id)
        thread = (data or {}).get("thread") or {}
        began, started = epoch(thread.get("created_at")), _started(chat)
        if not thread.get("id") or (began and started and began > started + SAME_CONVERSATION):
            return data, None
        self._remember(chat.thread_id or chat.chat_id, thread["id"])
        return data, thread["id"]

    def _v3(self, chat: ChatRef) -> ChatRef | None:
        """The v3 view of a v2 chat: its thread; None without credentials, or when its thread is not the latest."""
        thread_id = self._threads.get(chat.thread_id or chat.chat_id)
        if thread_id is None:
            _, thread_id = self._latest(chat)
            if thread_id is None:
                return None
        return replace(chat, source=self.v3.source, thread_id=thread_id)

    def _remember(self, scope: str, thread_id: str) -> None:
        self._threads[scope] = thread_id
        self._threads.move_to_end(scope)
        while len(self._threads) > REMEMBERED_THREADS:
            self._threads.popitem(last=False)

    def fetch_thread(self, chat: ChatRef) -> Thread | None:
        data, thread_id = self._latest(chat)
        return self.v3.thread_of(data, thread_id)

    def thread_active(self, chat: ChatRef) -> bool | None:
        v3 = self._v3(chat)
        return None if v3 is None else self.v3.thread_active(v3)

    def bot_message_landed(self, chat: ChatRef, custom_id: str, text: str = "", since: float = 0.0) -> bool:
        return self.v3.bot_message_landed(chat, custom_id)

    def untaggable(self, tag: str) -> str | None:
        return None

    def tag_landed(self, chat: ChatRef, tag: str) -> bool:
        v3 = self._v3(chat)
        return v3 is not None and self.v3.tag_landed(v3, tag)

    def bot_status(self) -> str | None:
        return self.v3.bot_status()

    def post_bot_message(self, chat: ChatRef, text: str, custom_id: str) -> None:
        self.v3.post_bot_message(chat, text, custom_id)

    def tag(self, chat: ChatRef, tag: str) -> None:
        v3 = self._v3(chat)
        if v3 is None:
            raise OutboundError("livechat", "get_chat", "not_found",
                                f"chat {chat.chat_id} has no thread of this v2 conversation (not its latest)")
        self.v3.tag(v3, tag)


def _started(chat: ChatRef) -> float | None:
    """The v2 conversation's start, from its scope (``<chat id>:<started_timestamp>``)."""
    _, _, started = (chat.thread_id or "").rpartition(":")
    return float(started) if started.isdigit() else None
