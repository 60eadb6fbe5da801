"""What every chat platform package provides, and the small interface handlers act through.

A platform package turns its webhooks into normalised events (its adapter) and, where the
platform can be acted on, implements ``ChatAPI`` over its own API client. Handlers see only
events and ``ChatAPI``: they never name a platform.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from chathooks.events import Delivery, Event, User


class InvalidPayload(Exception):
    """A webhook body failed validation; ``errors`` is field-level, nested like the body."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("invalid payload")
        self.errors = errors


def delivery(source: str, action: str, identity: Iterable[str], events: Iterable[Event], dedupe_ttl: int,
             received_at: float | None = None) -> Delivery | None:
    """The Delivery of a webhook's events, its id a hash of what identifies one delivery of it (retries
    share it); None when there are no events. Events without a time of their own get the receive time."""
    events = list(events)
    if not events:
        return None
    received_at = received_at if received_at is not None else time.time()
    if not all(e.time for e in events):
        stamp = datetime.fromtimestamp(received_at, UTC).isoformat().replace("+00:00", "Z")
        events = [e if e.time else replace(e, time=stamp) for e in events]
    return Delivery(
        id=hashlib.blake2b("\x1f".join(identity).encode(), digest_size=16).hexdigest(),
        source=source,
        action=action,
        dedupe_ttl=dedupe_ttl,
        events=tuple(events),
        received_at=received_at,
    )


@dataclass(frozen=True, slots=True)
class ChatRef:
    """The chat, and the thread in it, that an action is about: as the event named them."""

    source: str
    chat_id: str
    thread_id: str | None = None
    organization: str | None = None

    @classmethod
    def of(cls, event: Event) -> ChatRef:
        assert event.chat_id, "only events of a chat can be acted on"
        return cls(event.source, event.chat_id, event.thread_id, event.organization)


@dataclass(frozen=True, slots=True)
class Thread:
    """A thread as the platform has it now. ``history`` and ``tags`` are empty when the platform
    answered with another thread of the chat than the one asked for (its users still count)."""

    users: tuple[User, ...] = ()
    history: tuple[Event, ...] = ()
    tags: frozenset[str] = frozenset()
    active: bool = False


class ChatAPI(Protocol):
    """How handlers act on a platform's chats (SPEC §6): fetch a thread, post as the bot, tag, bot status.

    Reads answer None (or False) when the platform cannot be asked (no credentials); writes raise
    ``OutboundError`` when they fail. ``*_landed`` tell, after an attempt that never finished, whether
    its effect is already there, so it is not repeated.
    """

    source: str
    tag_method: str  # the API methods that tag and post, as records and metrics name them
    message_method: str
    bot_id: str | None
    no_bot: str  # why the bot cannot act when ``bot_id`` is None (names the setting)

    @property
    def live(self) -> bool:
        """Whether there are credentials to act with."""

    @property
    def bot_ids(self) -> frozenset[str]: ...

    def fetch_thread(self, chat: ChatRef) -> Thread | None: ...

    def thread_active(self, chat: ChatRef) -> bool | None:
        """Whether a bot message can still reach the thread; None when the platform cannot be asked."""

    def post_bot_message(self, chat: ChatRef, text: str, custom_id: str) -> None: ...

    def bot_message_landed(self, chat: ChatRef, custom_id: str, text: str, since: float) -> bool:
        """Whether our bot message (``custom_id``, ``text``) is in the chat, posted at ``since`` or later."""

    def untaggable(self, tag: str) -> str | None:
        """Why ``tag`` cannot be applied on this platform (it is then recorded, not sent), or None."""

    def tag(self, chat: ChatRef, tag: str) -> None: ...

    def tag_landed(self, chat: ChatRef, tag: str) -> bool: ...

    def bot_status(self) -> str | None:
        """The bot's routing status (``accepting_chats``, …) as the platform says; None when unknown."""
