"""Acting on Live Helper Chat chats (``ChatAPI``) through its REST API.

Bot messages go as ``sender=bot`` (as an operator they would accept a pending chat), with
``no_event=1`` for web chats; a channel chat (``iwh_id`` > 0: WhatsApp, Telegram…) reaches its
visitor only through the event, so it is posted with it, and the echo that comes back is a bot
message (``user_id`` −2), which counts for nothing. Tags are LHC subjects (the rules'
``lhc.subjects``), attached with a system message no visitor sees. ``addmsgadmin`` has no
idempotency key: after an unfinished attempt the chat's messages are searched for ours.
"""

from __future__ import annotations

import redis

from chathooks.http import Timeout
from chathooks.platforms.base import ChatRef, Thread
from chathooks.platforms.lhc.adapter import SOURCE, message_event, number, strip_bbcode
from chathooks.platforms.lhc.client import LhcClient
from chathooks.platforms.lhc.rules import LhcRule
from chathooks.rules import Rules
from chathooks.settings import Settings

CLOSED = 2  # chat.status
BOT = -2  # msg.user_id
CLOCK_SKEW = 10  # seconds between our clock and LHC's that a landed message may be off by


class LhcAPI:
    source = SOURCE
    tag_method = "addmsgadmin"
    message_method = "addmsgadmin"
    no_bot = "LHC posts bot messages as its own bot"
    bot_id = "lhc-bot"  # LHC's sender=bot: there whenever the API is
    bot_ids: frozenset[str] = frozenset()  # our messages come back as bot messages (user_id -2), not by id

    def __init__(self, client: LhcClient | None, rule: LhcRule) -> None:
        self.client = client
        self.rule = rule

    @classmethod
    def build(cls, settings: Settings, state: redis.Redis, timeout: Timeout, rules: Rules) -> LhcAPI:
        return cls(LhcClient(settings.lhc, timeout=timeout) if settings.lhc else None, rules.lhc)

    @property
    def live(self) -> bool:
        return self.client is not None

    # --- reads --------------------------------------------------------------------------

    def fetch_thread(self, chat: ChatRef) -> Thread | None:
        if self.client is None:
            return None
        info = self.client.chat(chat.chat_id)
        history = (message_event(m, chat.chat_id) for m in self.client.messages(chat.chat_id))
        return Thread(history=tuple(e for e in history if e is not None), tags=self._tags(info),
                      active=number(info.get("status")) != CLOSED)

    def thread_active(self, chat: ChatRef) -> bool | None:
        if self.client is None:
            return None
        return number(self.client.chat(chat.chat_id, attrs=()).get("status")) != CLOSED

    def bot_message_landed(self, chat: ChatRef, custom_id: str, text: str, since: float) -> bool:
        """Whether a bot message with ``text`` was posted since the attempt began (a later one is no answer)."""
        if self.client is None:
            return False
        wanted = strip_bbcode(text)
        return any(number(m.get("user_id")) == BOT and strip_bbcode(m.get("msg") or "") == wanted
                   and (number(m.get("time")) or 0) >= since - CLOCK_SKEW for m in self.client.messages(chat.chat_id))

    def tag_landed(self, chat: ChatRef, tag: str) -> bool:
        return self.client is not None and tag in self._tags(self.client.chat(chat.chat_id))

    def bot_status(self) -> str | None:
        return "accepting_chats"

    def untaggable(self, tag: str) -> str | None:
        return None if self.rule.subject(tag) else f"no subject id for tag {tag!r} in lhc.subjects"

    def _tags(self, info: dict) -> frozenset[str]:  # type: ignore[type-arg]
        ids = (number(s) for s in info.get("subject_ids") or ())
        return frozenset(tag for tag in (self.rule.tag_of(s) for s in ids if s is not None) if tag)

    # --- writes -------------------------------------------------------------------------

    def post_bot_message(self, chat: ChatRef, text: str, custom_id: str) -> None:
        assert self.client is not None
        channel = (number(self.client.chat(chat.chat_id, attrs=()).get("iwh_id")) or 0) > 0
        self.client.add_msg_admin(chat.chat_id, text, sender="bot", no_event=not channel)

    def tag(self, chat: ChatRef, tag: str) -> None:
        assert self.client is not None
        subject = self.rule.subject(tag)
        if subject is None or tag in self._tags(self.client.chat(chat.chat_id)):
            return  # already on the chat
        self.client.add_msg_admin(chat.chat_id, f"chathooks tag: {tag}", sender="system", no_event=True,
                                  subjects_ids=[subject])
