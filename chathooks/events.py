"""The normalised event every handler consumes, whatever platform sent it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    CHAT_STARTED = "chat_started"
    MESSAGE = "message"
    FORM_FILLED = "form_filled"
    CHAT_ENDED = "chat_ended"
    CUSTOMER_LEFT = "customer_left"  # the customer closed the chat widget: nobody is waiting any more
    TAGGED = "tagged"
    UNTAGGED = "untagged"
    RATED = "rated"
    RATING_CANCELLED = "rating_cancelled"
    ROUTING_STATUS = "routing_status"
    USER_ADDED = "user_added"
    USER_REMOVED = "user_removed"
    VISITOR_QUEUED = "visitor_queued"  # a visitor waits in the queue; no chat yet
    LEAD = "lead"  # contact details from outside a chat (a ticket's requester)
    TRIGGER_DUE = "trigger_due"  # internal: a moment a thread's triggers may turn has come
    TRIGGER_FIRED = "trigger_fired"  # internal: a trigger's window fired, its actions are to run
    SILENCE_DEADLINE = "silence_deadline"  # the previous release's nudge deadline (its dead letters replay)
    TENANT = "tenant"  # internal: an organization installed or uninstalled the app (``raw["step"]`` says which)


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"
    INTERNAL = "internal"  # an agents-only note (a supervisor's whisper): never matched, never a reply


@dataclass(frozen=True, slots=True)
class User:
    id: str
    type: str  # "customer" | "agent" as the platform says; our bot is recognised by id
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a chat.

    ``key`` identifies the event across redeliveries (handlers derive their idempotency
    keys from it); ``raw`` keeps the platform's payload for the record, minus secrets.
    """

    key: str
    source: str
    kind: Kind
    organization: str | None = None
    chat_id: str | None = None
    thread_id: str | None = None
    author_id: str | None = None
    author_role: Role | None = None
    text: str | None = None
    time: str | None = None
    rating: int | None = None  # 1 good, 0 bad
    customer_email: str | None = None
    customer_name: str | None = None
    tag: str | None = None
    status: str | None = None
    users: tuple[User, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Set fields only; ``raw`` is shared, not copied (it is only ever serialised)."""
        data = {name: value for name in _EVENT_FIELDS_ORDERED if (value := getattr(self, name)) not in _UNSET}
        if self.users:
            data["users"] = [{name: getattr(u, name) for name in _USER_FIELDS} for u in self.users]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        values = {k: v for k, v in data.items() if k in _EVENT_FIELDS}
        values["kind"] = Kind(values["kind"])
        if values.get("author_role") is not None:
            values["author_role"] = Role(values["author_role"])
        values["users"] = tuple(User(**u) for u in values.get("users", ()))
        return cls(**values)


_EVENT_FIELDS_ORDERED = tuple(f.name for f in fields(Event))
_EVENT_FIELDS = frozenset(_EVENT_FIELDS_ORDERED)
_USER_FIELDS = tuple(f.name for f in fields(User))
_UNSET = (None, (), {})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted webhook: what the queue carries to the workers.

    ``id`` names the delivery for deduplication (a retry of the same webhook has the same id);
    ``dedupe_ttl`` is how long a repeat counts as a retry.
    """

    id: str
    source: str
    action: str
    dedupe_ttl: int
    events: tuple[Event, ...]
    received_at: float

    @property
    def chat_id(self) -> str | None:
        """The chat it is about (its first event's), if any."""
        return next((e.chat_id for e in self.events if e.chat_id), None)

    @property
    def organization(self) -> str | None:
        """The organization (license) it came from, if it said."""
        return next((e.organization for e in self.events if e.organization), None)

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "action": self.action,
            "received_at": self.received_at,
            "events": [event.to_dict() for event in self.events],
        }

    @staticmethod
    def events_of(message: dict[str, Any]) -> list[Event]:
        return [Event.from_dict(e) for e in message["events"]]


def epoch(time: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time, or None when absent or malformed."""
    if not time:
        return None
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rfc3339(t: float, timespec: str = "milliseconds") -> str:
    """``t`` (seconds since the epoch) as RFC 3339 UTC with a ``Z``: the inverse of ``epoch``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
