"""Acting on LiveChat v3 chats (``ChatAPI``) through the Agent Chat API, as the configured agent and bot."""

from __future__ import annotations

from typing import Any

import redis

from chathooks.http import Timeout
from chathooks.platforms.base import ChatRef, Thread
from chathooks.platforms.livechat.adapter import SOURCE, thread_history, users_of
from chathooks.platforms.livechat.client import LiveChatClient, RedisTokenCache
from chathooks.platforms.livechat.fairness import OrganizationRate, limiter
from chathooks.rules import Rules
from chathooks.settings import Settings


class LiveChatAPI:
    """``ChatAPI`` for LiveChat v3.5/v3.6; without a client (no credentials) it can read nothing."""

    source = SOURCE
    tag_method = "tag_thread"
    message_method = "send_event"
    no_bot = "no LIVECHAT_BOT_ID configured"

    def __init__(self, client: LiveChatClient | None, bot_id: str | None) -> None:
        self.client = client
        self.bot_id = bot_id
        self.bot_ids = frozenset(filter(None, (bot_id,)))

    @classmethod
    def build(cls, settings: Settings, state: redis.Redis, timeout: Timeout, rules: Rules | None = None) -> LiveChatAPI:
        client = None
        if settings.livechat.has_credentials:
            # The v3.6 bot token is shared by every worker process through Redis.
            cache = RedisTokenCache(state, f"{settings.key_prefix}bot-token:")
            client = LiveChatClient(settings.livechat, timeout=timeout, token_cache=cache, rate=_rate(settings, state))
        return cls(client, settings.livechat.bot_id)

    @property
    def live(self) -> bool:
        return self.client is not None

    # --- reads --------------------------------------------------------------------------

    def get_chat(self, chat_id: str, thread_id: str | None = None) -> dict[str, Any] | None:
        """The chat with one thread (the given one, else the latest), or None without credentials."""
        return self.client.get_chat(chat_id, thread_id) if self.client else None

    def fetch_thread(self, chat: ChatRef) -> Thread | None:
        return self.thread_of(self.get_chat(chat.chat_id, chat.thread_id), chat.thread_id)

    def thread_of(self, data: dict[str, Any] | None, thread_id: str | None) -> Thread | None:
        """The ``Thread`` of a ``get_chat`` answer, if it is ``thread_id``'s (else only the chat's users)."""
        if not data:
            return None
        thread = data.get("thread") or {}
        if thread_id is None or thread.get("id") != thread_id:
            return Thread(users=users_of(data))
        tags = frozenset(t for t in thread.get("tags") or () if isinstance(t, str))
        return Thread(users_of(data), tuple(thread_history(data, self.bot_ids)), tags, bool(thread.get("active")))

    def thread_active(self, chat: ChatRef) -> bool | None:
        # Only a chat's latest thread can be active.
        data = self.get_chat(chat.chat_id)
        if data is None:
            return None
        thread = data.get("thread") or {}
        return thread.get("id") == chat.thread_id and bool(thread.get("active"))

    def bot_message_landed(self, chat: ChatRef, custom_id: str, text: str = "", since: float = 0.0) -> bool:
        """Whether the chat's latest thread holds an event with ``custom_id`` (a send that landed)."""
        thread = (self.get_chat(chat.chat_id) or {}).get("thread") or {}
        return any(e.get("custom_id") == custom_id for e in thread.get("events") or ())

    def untaggable(self, tag: str) -> str | None:
        return None

    def tag_landed(self, chat: ChatRef, tag: str) -> bool:
        thread = (self.get_chat(chat.chat_id, chat.thread_id) or {}).get("thread") or {}
        return tag in (thread.get("tags") or ())

    def bot_status(self) -> str | None:
        if self.client is None or self.bot_id is None:
            return None
        for row in self.client.list_routing_statuses():
            if row.get("agent_id") == self.bot_id:
                return str(row.get("status", "")).replace(" ", "_")
        return None

    # --- writes -------------------------------------------------------------------------

    def post_bot_message(self, chat: ChatRef, text: str, custom_id: str) -> None:
        """Send ``text`` as the bot; ``custom_id`` lets a crashed attempt's send be recognised."""
        assert self.client is not None
        event = {"type": "message", "text": text, "visibility": "all", "custom_id": custom_id}
        self.client.send_event(chat.chat_id, event, as_bot=True)

    def tag(self, chat: ChatRef, tag: str) -> None:
        assert self.client is not None and chat.thread_id is not None
        self.client.tag_thread(chat.chat_id, chat.thread_id, tag)


def _rate(settings: Settings, state: redis.Redis) -> OrganizationRate | None:
    """Beside multi-license mode the environment's organization is one more tenant: it has its share too."""
    market, organization = settings.marketplace, settings.livechat.organization_id
    if market is None or organization is None:
        return None
    return OrganizationRate(limiter(market, state, settings.key_prefix), organization)
