"""LiveChat v3.5/v3.6 adapter: a verified webhook envelope becomes a Delivery of normalised events.

Each handled action has one row in ``ACTIONS``: its payload schema, what identifies one
delivery of it (for deduplicating LiveChat's retries), and how it maps to events.

Dedupe windows. Actions whose identity names a single happening (an event id, a thread's
start or end) are deduplicated for ``Settings.dedupe_ttl_seconds``. Actions that report a
state which may legitimately recur (a tag added again later, a routing status toggled back)
use the short ``Settings.state_dedupe_ttl_seconds`` — longer than LiveChat's ~1 minute of
retries, short enough not to swallow a real repeat. Handlers stay idempotent either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from chathooks.events import Delivery, Event, Kind, Role, User
from chathooks.fast_load import FastLoader
from chathooks.platforms.base import InvalidPayload, delivery
from chathooks.platforms.livechat import schemas as s
from chathooks.settings import Settings

SOURCE = "livechat"

Normaliser = Callable[[dict[str, Any], "Context"], list[Event]]


@dataclass(frozen=True, slots=True)
class Context:
    organization: str | None
    bot_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    schema: FastLoader
    identity: Callable[[dict[str, Any]], tuple[str, ...]]
    normalise: Normaliser
    recurring: bool = False  # state that may legitimately repeat: short dedupe window


ENVELOPE = FastLoader(s.EnvelopeSchema())


def load_envelope(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the envelope; the secret is checked by the caller and dropped here."""
    try:
        envelope = ENVELOPE.load(body)
    except ValidationError as exc:
        raise InvalidPayload(exc.messages) from None
    del envelope["secret_key"]
    return envelope


def to_delivery(envelope: dict[str, Any], settings: Settings, received_at: float | None = None) -> Delivery | None:
    """Validate the action's payload and normalise it; None when nothing here needs automating."""
    action = envelope["action"]
    spec = ACTIONS.get(action)
    if spec is None:
        return None
    try:
        payload = spec.schema.load(envelope["payload"])
    except ValidationError as exc:
        raise InvalidPayload({"payload": exc.messages}) from None
    organization = envelope.get("organization_id") or _str_or_none(envelope.get("license_id"))
    events = spec.normalise(payload, Context(organization, bot_ids_of(settings)))
    return delivery(SOURCE, action, (organization or "", action, *spec.identity(payload)), events,
                    settings.state_dedupe_ttl_seconds if spec.recurring else settings.dedupe_ttl_seconds, received_at)


def bot_ids_of(settings: Settings) -> frozenset[str]:
    """Our own bot's ids, whose messages count for nothing."""
    return frozenset(filter(None, (settings.livechat.bot_id,)))


# --- normalisers -------------------------------------------------------------------------


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _event(ctx: Context, kind: Kind, key: str, **fields: Any) -> Event:
    return Event(key=f"{SOURCE}:{key}", source=SOURCE, kind=kind, organization=ctx.organization, **fields)


def _role(user_type: str | None, user_id: str | None, ctx: Context) -> Role | None:
    if user_id is not None and user_id in ctx.bot_ids:
        return Role.BOT
    return {"customer": Role.CUSTOMER, "agent": Role.AGENT}.get(user_type or "")


def _users(raw_users: list[dict[str, Any]]) -> tuple[User, ...]:
    return tuple(User(id=u["id"], type=u["type"], name=u.get("name"), email=u.get("email")) for u in raw_users)


def _roles(users: tuple[User, ...], ctx: Context) -> dict[str, Role]:
    return {u.id: r for u in users if (r := _role(u.type, u.id, ctx))}


def users_of(chat: dict[str, Any]) -> tuple[User, ...]:
    """The users of a ``get_chat`` response (unvalidated API data: malformed entries are skipped)."""
    return _users([u for u in chat.get("users") or [] if isinstance(u, dict) and u.get("id") and u.get("type")])


def thread_history(chat: dict[str, Any], bot_ids: frozenset[str]) -> list[Event]:
    """The events of a ``get_chat`` response's thread, normalised with their authors' roles."""
    thread = chat.get("thread") or {}
    ctx = Context(None, bot_ids)
    roles = _roles(users_of(chat), ctx)
    events = (chat_event(ev, chat["id"], thread["id"], ctx, roles)
              for ev in thread.get("events") or [] if isinstance(ev, dict) and ev.get("id") and ev.get("type"))
    return [e for e in events if e is not None]


RATING_WORDS = {"good": 1, "bad": 0, "1": 1, "0": 0}


def form_answers(fields: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """Email and name from a filled form: by field type first, then by label."""
    email = name = None
    for field in fields:
        answer = field.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            continue
        kind, label = field.get("type", ""), (field.get("label") or "").lower()
        if email is None and (kind == "email" or "mail" in label) and "@" in answer:
            email = answer.strip()
        elif name is None and (kind == "name" or label.startswith("name")):
            name = answer.strip()
    return email, name


def chat_event(ev: dict[str, Any], chat_id: str, thread_id: str, ctx: Context, roles: dict[str, Role]) -> Event | None:
    """One event of a thread (from ``incoming_event`` or a thread's history) as an Event.

    ``roles`` maps the chat's users to roles where known; our own bot is recognised regardless.
    """
    common = dict(chat_id=chat_id, thread_id=thread_id, time=ev.get("created_at"), raw=ev)
    key = f"{chat_id}:event:{ev['id']}"
    author = ev.get("author_id")
    if ev["type"] == "system_message":
        subtype = ev.get("system_message_type")
        if subtype == "rating.chat_rated":
            score = RATING_WORDS.get(str((ev.get("text_vars") or {}).get("score", "")).lower())
            if score is None:
                return None
            return _event(ctx, Kind.RATED, key, author_role=Role.SYSTEM, rating=score, **common)
        if subtype == "rating.chat_rating_canceled":
            return _event(ctx, Kind.RATING_CANCELLED, key, author_role=Role.SYSTEM, **common)
        return None
    role = Role.BOT if author in ctx.bot_ids else roles.get(author) if author else None
    if ev["type"] == "filled_form":
        email, name = form_answers(ev.get("fields") or [])
        if email is None and name is None:
            return None
        return _event(ctx, Kind.FORM_FILLED, key, author_id=author, author_role=role,
                      customer_email=email, customer_name=name, **common)
    if ev["type"] in ("message", "file", "rich_message"):
        return _event(ctx, Kind.MESSAGE, key, author_id=author, author_role=role, text=ev.get("text"), **common)
    return None


def _incoming_chat(p: dict[str, Any], ctx: Context) -> list[Event]:
    chat, thread = p["chat"], p["chat"]["thread"]
    users = _users(chat["users"])
    roles = _roles(users, ctx)
    customer = next((u for u in users if u.type == "customer"), None)
    summary = {k: v for k, v in thread.items() if k != "events"}
    started = _event(
        ctx, Kind.CHAT_STARTED, f"{chat['id']}:{thread['id']}:started",
        chat_id=chat["id"], thread_id=thread["id"], time=thread.get("created_at"), users=users,
        customer_email=customer.email if customer else None, customer_name=customer.name if customer else None,
        raw={"thread": summary},
    )
    history = (chat_event(ev, chat["id"], thread["id"], ctx, roles) for ev in thread["events"])
    return [started, *(e for e in history if e is not None)]


def _incoming_event(p: dict[str, Any], ctx: Context) -> list[Event]:
    event = chat_event(p["event"], p["chat_id"], p["thread_id"], ctx, {})
    return [event] if event else []


def _thread_event(p: dict[str, Any], ctx: Context, kind: Kind, suffix: str, **fields: Any) -> Event:
    """The single event of a thread-level action (``chat_id`` and ``thread_id`` in the payload)."""
    return _event(ctx, kind, f"{p['chat_id']}:{p['thread_id']}:{suffix}",
                  chat_id=p["chat_id"], thread_id=p["thread_id"], raw=p, **fields)


def _chat_deactivated(p: dict[str, Any], ctx: Context) -> list[Event]:
    return [_thread_event(p, ctx, Kind.CHAT_ENDED, "ended", author_id=p.get("user_id"))]


def _tag_change(kind: Kind) -> Normaliser:
    return lambda p, ctx: [_thread_event(p, ctx, kind, f"{kind}:{p['tag']}", tag=p["tag"])]


RATING = s.RatingScoreSchema()


def _rating_updated(p: dict[str, Any], ctx: Context) -> list[Event]:
    rating = p["properties"].get("rating")
    if not rating or "score" not in rating:
        return []
    try:
        score = RATING.load(rating)["score"]
    except ValidationError as exc:
        raise InvalidPayload({"payload": {"properties": {"rating": exc.messages}}}) from None
    return [_thread_event(p, ctx, Kind.RATED, f"rated:{score}", rating=score, author_role=Role.SYSTEM)]


def _rating_deleted(p: dict[str, Any], ctx: Context) -> list[Event]:
    if "score" not in p["properties"].get("rating", ()):
        return []
    return [_thread_event(p, ctx, Kind.RATING_CANCELLED, "rating-cancelled", author_role=Role.SYSTEM)]


def _routing_status(p: dict[str, Any], ctx: Context) -> list[Event]:
    status = _status(p)
    return [_event(ctx, Kind.ROUTING_STATUS, f"routing:{p['agent_id']}:{status}",
                   author_id=p["agent_id"], status=status, raw=p)]


def _status(p: dict[str, Any]) -> str:
    return p["status"].replace(" ", "_")  # v3.5's webhook docs spell it with spaces


def _user_added(p: dict[str, Any], ctx: Context) -> list[Event]:
    user = _users([p["user"]])[0]
    return [_event(ctx, Kind.USER_ADDED, f"{p['chat_id']}:user-added:{user.id}:{p.get('thread_id', '')}",
                   chat_id=p["chat_id"], thread_id=p.get("thread_id"), author_id=user.id,
                   author_role=_role(user.type, user.id, ctx), users=(user,), raw=p)]


def _user_removed(p: dict[str, Any], ctx: Context) -> list[Event]:
    return [_event(ctx, Kind.USER_REMOVED, f"{p['chat_id']}:user-removed:{p['user_id']}:{p.get('thread_id', '')}",
                   chat_id=p["chat_id"], thread_id=p.get("thread_id"), author_id=p["user_id"], raw=p)]


def _bot_deleted(p: dict[str, Any], ctx: Context) -> list[Event]:
    # A license's admin deleted a bot: if it was its tenant's, provisioning makes it a new one.
    return [_event(ctx, Kind.TENANT, f"bot-deleted:{p['id']}", raw={"step": "provision", "bot_deleted": p["id"]})]


def _properties_identity(p: dict[str, Any]) -> tuple[str, ...]:
    return p["chat_id"], p["thread_id"], json.dumps(p["properties"], sort_keys=True)


ACTIONS: dict[str, ActionSpec] = {
    "incoming_chat": ActionSpec(
        FastLoader(s.IncomingChatSchema()), lambda p: (p["chat"]["id"], p["chat"]["thread"]["id"]), _incoming_chat),
    "incoming_event": ActionSpec(
        FastLoader(s.IncomingEventSchema()), lambda p: (p["chat_id"], p["event"]["id"]), _incoming_event),
    "chat_deactivated": ActionSpec(
        FastLoader(s.ChatDeactivatedSchema()), lambda p: (p["chat_id"], p["thread_id"]), _chat_deactivated),
    "thread_tagged": ActionSpec(
        FastLoader(s.ThreadTagSchema()), lambda p: (p["chat_id"], p["thread_id"], p["tag"]),
        _tag_change(Kind.TAGGED), recurring=True),
    "thread_untagged": ActionSpec(
        FastLoader(s.ThreadTagSchema()), lambda p: (p["chat_id"], p["thread_id"], p["tag"]),
        _tag_change(Kind.UNTAGGED), recurring=True),
    "thread_properties_updated": ActionSpec(
        FastLoader(s.ThreadPropertiesUpdatedSchema()), _properties_identity, _rating_updated, recurring=True),
    "thread_properties_deleted": ActionSpec(
        FastLoader(s.ThreadPropertiesDeletedSchema()), _properties_identity, _rating_deleted, recurring=True),
    "routing_status_set": ActionSpec(
        FastLoader(s.RoutingStatusSetSchema()), lambda p: (p["agent_id"], _status(p)), _routing_status,
        recurring=True),
    "user_added_to_chat": ActionSpec(
        FastLoader(s.UserAddedSchema()), lambda p: (p["chat_id"], p.get("thread_id", ""), p["user"]["id"]), _user_added,
        recurring=True),
    "user_removed_from_chat": ActionSpec(
        FastLoader(s.UserRemovedSchema()), lambda p: (p["chat_id"], p.get("thread_id", ""), p["user_id"]),
        _user_removed, recurring=True),
    "bot_deleted": ActionSpec(FastLoader(s.BotDeletedSchema()), lambda p: (p["id"],), _bot_deleted),
}
