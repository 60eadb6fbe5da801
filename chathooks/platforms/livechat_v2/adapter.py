"""Legacy LiveChat v2 adapter: a webhook body becomes a Delivery of normalised events.

Each handled ``event_type`` has one row in ``EVENTS``: its schema, what identifies one delivery
of it, and how it maps to events. A v2 chat has no threads: one conversation is the thread scope
(``thread_id`` is the chat id and its start, ``scope``), and acting on it goes through the v3
Agent API (``api``).
The ``token`` field is a LiveChat API credential, not a signature: the ingress drops it first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from chathooks.events import Delivery, Event, Kind, Role, User
from chathooks.fast_load import FastLoader
from chathooks.platforms.base import InvalidPayload, delivery
from chathooks.platforms.livechat.adapter import bot_ids_of, form_answers
from chathooks.platforms.livechat_v2 import schemas as s
from chathooks.settings import Settings

SOURCE = "livechat_v2"
ROLES = {"visitor": Role.CUSTOMER, "agent": Role.AGENT, "supervisor": Role.INTERNAL}


@dataclass(frozen=True, slots=True)
class Context:
    organization: str
    bot_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class EventSpec:
    schema: FastLoader
    identity: Callable[[dict[str, Any]], tuple[str, ...]]
    normalise: Callable[[dict[str, Any], Context], list[Event]]
    recurring: bool = False  # state that may legitimately repeat: short dedupe window


ENVELOPE = FastLoader(s.EnvelopeSchema())


def to_delivery(body: dict[str, Any], settings: Settings, received_at: float | None = None) -> Delivery | None:
    """Validate and normalise a v2 webhook (``token`` already dropped); None when nothing needs automating."""
    try:
        envelope = ENVELOPE.load(body)
    except ValidationError as exc:
        raise InvalidPayload(exc.messages) from None
    license_id = envelope["license_id"]
    if isinstance(license_id, bool) or not isinstance(license_id, (str, int)) or not str(license_id).strip():
        raise InvalidPayload({"license_id": ["must be a string or a number"]})
    license_id = str(license_id).strip()
    event_type = envelope["event_type"]
    spec = EVENTS.get(event_type)
    if spec is None:
        return None
    try:
        payload = spec.schema.load(body)
    except ValidationError as exc:
        raise InvalidPayload(exc.messages) from None
    unique = envelope.get("event_unique_id")
    identity = (license_id, event_type, *((unique,) if unique else spec.identity(payload)))
    events = spec.normalise(payload, Context(f"license:{license_id}", bot_ids_of(settings)))
    return delivery(SOURCE, event_type, identity, events,
                    settings.state_dedupe_ttl_seconds if spec.recurring else settings.dedupe_ttl_seconds, received_at)


# --- normalisers -------------------------------------------------------------------------


def _iso(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _event(ctx: Context, kind: Kind, key: str, **fields: Any) -> Event:
    return Event(key=f"{SOURCE}:{key}", source=SOURCE, kind=kind, organization=ctx.organization, **fields)


def _customer(p: dict[str, Any]) -> tuple[User | None, str | None, str | None]:
    """The visitor as a user, and the customer's email and name: ``visitor`` first, the survey fills in."""
    visitor = p.get("visitor") or {}
    email, name = visitor.get("email"), visitor.get("name")
    if not (email and name):
        survey_email, survey_name = form_answers(p.get("pre_chat_survey") or [])
        email, name = email or survey_email, name or survey_name
    user = User(id=visitor["id"], type="customer", name=name, email=email) if visitor else None
    return user, email, name


def scope(chat: dict[str, Any]) -> str:
    """The thread scope of one v2 conversation: a returning customer's next chat is another one."""
    started = chat.get("started_timestamp")
    return f"{chat['id']}:{started}" if started else chat["id"]


def _chat(p: dict[str, Any], ctx: Context, kind: Kind, suffix: str, time: int | None) -> Event:
    """The chat-level event of a chat webhook, carrying the customer as far as it is known."""
    chat = p["chat"]
    user, email, name = _customer(p)
    summary = {k: chat.get(k) for k in ("id", "started_timestamp", "ended_timestamp") if chat.get(k) is not None}
    return _event(ctx, kind, f"{scope(chat)}:{suffix}", chat_id=chat["id"], thread_id=scope(chat), time=_iso(time),
                  users=(user,) if user else (), customer_email=email, customer_name=name,
                  author_id=user.id if user else None, raw={"chat": summary})


def _message(n: int, m: dict[str, Any], chat: dict[str, Any], visitor_id: str | None, ctx: Context) -> Event | None:
    role = ROLES.get(m["user_type"])
    if role is None or not m.get("text"):
        return None
    author = visitor_id if role is Role.CUSTOMER else m.get("agent_id")
    if author is not None and author in ctx.bot_ids:
        role = Role.BOT
    return _event(ctx, Kind.MESSAGE, f"{scope(chat)}:message:{n}", chat_id=chat["id"], thread_id=scope(chat),
                  author_id=author, author_role=role, text=m["text"], time=_iso(m.get("timestamp")), raw=m)


def _chat_started(p: dict[str, Any], ctx: Context) -> list[Event]:
    return [_chat(p, ctx, Kind.CHAT_STARTED, "started", p["chat"].get("started_timestamp"))]


def _chat_ended(p: dict[str, Any], ctx: Context) -> list[Event]:
    """The end, then the transcript's messages: the chat is over, so they open no silence window, and each
    tags what it matches (tags are applied once, whichever event applies them)."""
    chat = p["chat"]
    ended = _chat(p, ctx, Kind.CHAT_ENDED, "ended", chat.get("ended_timestamp"))
    messages = (_message(n, m, chat, ended.author_id, ctx) for n, m in enumerate(chat["messages"]))
    return [ended, *(m for m in messages if m is not None)]


def _chat_changed(p: dict[str, Any], ctx: Context) -> list[Event]:
    chat = p["chat"]
    return [_event(ctx, Kind.TAGGED, f"{scope(chat)}:tagged:{tag}", chat_id=chat["id"], thread_id=scope(chat),
                   tag=tag, raw={"chat": {"id": chat["id"], "tags": chat["tags"]}})
            for tag in dict.fromkeys(chat["tags"])]


def _visitor_queued(p: dict[str, Any], ctx: Context) -> list[Event]:
    user, email, name = _customer(p)
    assert user is not None
    return [_event(ctx, Kind.VISITOR_QUEUED, f"visitor:{user.id}:queued", author_id=user.id,
                   author_role=Role.CUSTOMER, users=(user,), customer_email=email, customer_name=name,
                   raw={"visitor": {"id": user.id}})]


def _ticket_created(p: dict[str, Any], ctx: Context) -> list[Event]:
    ticket = p["ticket"]
    requester = ticket.get("requester") or {}
    return [_event(ctx, Kind.LEAD, f"ticket:{ticket['id']}:created", customer_email=requester.get("mail"),
                   customer_name=requester.get("name"), raw={"ticket": {"id": ticket["id"]}})]


def _chat_identity(p: dict[str, Any]) -> tuple[str, ...]:
    chat = p["chat"]
    return chat["id"], str(chat.get("ended_timestamp") or chat.get("started_timestamp") or "")


def _ticket_identity(p: dict[str, Any]) -> tuple[str, ...]:
    events = p["ticket"]["events"]
    return p["ticket"]["id"], str(events[-1].get("date") or "") if events else ""


CHAT = FastLoader(s.ChatEventSchema())

EVENTS: dict[str, EventSpec] = {
    "chat_started": EventSpec(CHAT, _chat_identity, _chat_started),
    "chat_ended": EventSpec(CHAT, _chat_identity, _chat_ended),
    "chat_changed": EventSpec(CHAT, lambda p: (*_chat_identity(p), *sorted(p["chat"]["tags"])), _chat_changed,
                              recurring=True),
    "visitor_queued": EventSpec(FastLoader(s.VisitorQueuedSchema()), lambda p: (p["visitor"]["id"],),
                                _visitor_queued, recurring=True),
    "ticket_created": EventSpec(FastLoader(s.TicketCreatedSchema()), _ticket_identity, _ticket_created),
}
