"""Live Helper Chat adapter: the template's JSON body becomes a Delivery of normalised events.

Each handled event has one row in ``EVENTS``: what identifies one delivery of it (never
``webhook_id`` or ``sent_at``, which differ between two sends of one event) and how it maps to
events. An LHC chat is its own thread scope. Messages are classified by ``user_id``: 0 the
customer, > 0 an operator (a whisper is internal), −1 system, −2 bot (our own nudges come back
this way); BBCode is stripped so rules match the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from chathooks.events import Delivery, Event, Kind, Role
from chathooks.fast_load import FastLoader
from chathooks.platforms.base import InvalidPayload, delivery
from chathooks.platforms.lhc.rules import LhcRule
from chathooks.platforms.lhc.schemas import WebhookSchema
from chathooks.settings import Settings

SOURCE = "lhc"
WEBHOOK = FastLoader(WebhookSchema())
KNOWN = frozenset(WebhookSchema().fields)
CHAT_ATTRIBUTES = ("status", "status_sub", "dep_id", "user_id", "iwh_id", "time", "cls_time", "last_user_msg_time",
                   "last_op_msg_time", "lsync")  # the chat's fields events keep (no nick, email or phone)

_BBCODE = ("b|i|u|s|url|img|quote|code|list|\\*|color|size|fs|font|left|center|right|justify|youtube|video|"
           "audio|loc|file")
# An attribute stops at the next bracket, so every match ends before the next tag begins: linear in the text.
_TAG = re.compile(rf"\[(/?)({_BBCODE})(=[^\[\]]*)?\]", re.IGNORECASE)
_MEDIA = frozenset({"img", "video", "audio", "file"})  # what they enclose is a link, not words


@dataclass(frozen=True, slots=True)
class EventSpec:
    identity: Callable[[dict[str, Any]], tuple[str, ...]]
    normalise: Callable[[dict[str, Any], LhcRule], list[Event]]


def to_delivery(body: dict[str, Any], settings: Settings, rule: LhcRule,
                received_at: float | None = None) -> Delivery | None:
    """Validate and normalise an LHC call; None when its event is not one chathooks automates."""
    try:
        payload = WEBHOOK.load(body)
    except ValidationError as exc:
        raise InvalidPayload(exc.messages) from None
    event = payload.get("event") or payload.get("trigger_event")
    if not event:
        raise InvalidPayload({"event": ["missing: {{args.lhc_event}}, or trigger_event (LHC before 4.79v)"]})
    spec = EVENTS.get(event)
    if spec is None:
        return None
    payload["event"] = event
    return delivery(SOURCE, event, (SOURCE, *spec.identity(payload)), spec.normalise(payload, rule),
                    settings.dedupe_ttl_seconds, received_at)


# --- messages (also what the REST API's fetchchatmessages rows become) ----------------------


def strip_bbcode(text: str) -> str:
    """The text a person reads: files and images out, tags gone, their words kept. One pass over the tags."""
    tags = list(_TAG.finditer(text))
    last_close = {t[2].lower(): t.start() for t in tags if t[1]}
    out: list[str] = []
    position, dropping = 0, None
    for tag in tags:
        closing, name = bool(tag[1]), tag[2].lower()
        if dropping is not None:
            if closing and name == dropping:
                position, dropping = tag.end(), None
            continue
        out.append(text[position:tag.start()])
        out.append(" ")
        position = tag.end()
        # A media tag's content goes with it when it is closed later on; [file=ID] stands alone.
        if name in _MEDIA and not closing and not (name == "file" and tag[3]) and last_close.get(name, -1) > position:
            dropping = name
    out.append(text[position:])
    return " ".join("".join(out).split())


def number(value: Any) -> int | None:
    """An LHC integer, which may come as a number or a string."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def iso(timestamp: Any) -> str | None:
    seconds = number(timestamp)
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z") if seconds else None


def whisper(meta_msg: Any) -> bool:
    if isinstance(meta_msg, str) and meta_msg.strip():
        try:
            meta_msg = json.loads(meta_msg)
        except ValueError:
            return False
    content = meta_msg.get("content") if isinstance(meta_msg, dict) else None
    return isinstance(content, dict) and content.get("whisper") is True


def role_of(user_id: int | None, meta_msg: Any) -> Role | None:
    if user_id is None:
        return None
    if user_id == 0:
        return Role.CUSTOMER
    if user_id > 0:
        return Role.INTERNAL if whisper(meta_msg) else Role.AGENT
    return {-1: Role.SYSTEM, -2: Role.BOT}.get(user_id)


def message_event(msg: Mapping[str, Any], chat_id: str, raw: dict[str, Any] | None = None) -> Event | None:
    """A message of the chat as an Event; None when it is no message (a null ``msg`` of the template)."""
    msg_id, user_id = number(msg.get("id")), number(msg.get("user_id"))
    role = role_of(user_id, msg.get("meta_msg"))
    if msg_id is None or role is None:
        return None
    return Event(key=f"{SOURCE}:{chat_id}:msg:{msg_id}", source=SOURCE, kind=Kind.MESSAGE, chat_id=chat_id,
                 thread_id=chat_id, author_id=str(user_id) if role in (Role.AGENT, Role.INTERNAL) else None,
                 author_role=role, text=strip_bbcode(msg.get("msg") or ""), time=iso(msg.get("time")),
                 raw=raw or {})


# --- normalisers -------------------------------------------------------------------------


def _raw(p: dict[str, Any]) -> dict[str, Any]:
    """What events keep of the call: the chat's state fields, and whatever extra fields the template sent."""
    chat = {k: p["chat"].get(k) for k in CHAT_ATTRIBUTES if p["chat"].get(k) is not None}
    extra = {k: v for k, v in p.items() if k not in KNOWN}
    return {"chat": chat, **({"attributes": extra} if extra else {})}


def _chat_event(p: dict[str, Any], kind: Kind, suffix: str, time: Any) -> Event:
    chat = p["chat"]
    chat_id = str(chat["id"])
    return Event(key=f"{SOURCE}:{chat_id}:{suffix}", source=SOURCE, kind=kind, chat_id=chat_id, thread_id=chat_id,
                 time=iso(time), customer_email=(chat.get("email") or "").strip() or None,
                 customer_name=(chat.get("nick") or "").strip() or None, raw=_raw(p))


def _message(p: dict[str, Any], rule: LhcRule) -> list[Event]:
    event = message_event(p.get("msg") or {}, str(p["chat"]["id"]), _raw(p))
    return [event] if event else []


def _started(p: dict[str, Any], rule: LhcRule) -> list[Event]:
    """The chat's start, and its initial message (a customer's when its user_id is 0)."""
    return [_chat_event(p, Kind.CHAT_STARTED, "started", p["chat"].get("time")), *_message(p, rule)]


def _closed(p: dict[str, Any], rule: LhcRule) -> list[Event]:
    return [_chat_event(p, Kind.CHAT_ENDED, f"closed:{p['chat'].get('cls_time') or ''}", p["chat"].get("cls_time"))]


def _left(p: dict[str, Any], rule: LhcRule) -> list[Event]:
    return [_chat_event(p, Kind.CUSTOMER_LEFT, f"left:{p['event']}",
                        (p.get("msg") or {}).get("time"))]


def _modified(p: dict[str, Any], rule: LhcRule) -> list[Event]:
    event = _chat_event(p, Kind.FORM_FILLED, f"email:{(p['chat'].get('email') or '').strip().lower()}", None)
    return [event] if event.customer_email else []


def _survey(p: dict[str, Any], rule: LhcRule) -> list[Event]:
    """The rating question's stars as good or bad: good from ``lhc.good_at`` of the scale up."""
    n = rule.rating_question
    given = number((p.get("survey_item") or {}).get(f"max_stars_{n}"))
    scale = number((p.get("survey") or {}).get(f"max_stars_{n}"))
    if not given or not scale:
        return []
    rating = 1 if given / scale >= rule.good_at else 0
    event = _chat_event(p, Kind.RATED, f"survey:{p['survey_item'].get('id')}:{_stars(p)}",
                        p["survey_item"].get("ftime"))
    return [replace(event, rating=rating, author_role=Role.SYSTEM)]


def _stars(p: dict[str, Any]) -> str:
    item = p.get("survey_item") or {}
    return ",".join(str(item.get(f"max_stars_{n}") or 0) for n in range(1, 6))


def _chat_id(p: dict[str, Any]) -> str:
    return str(p["chat"]["id"])


def _message_identity(p: dict[str, Any]) -> tuple[str, ...]:
    return "message", _chat_id(p), str((p.get("msg") or {}).get("id"))


MESSAGE = EventSpec(_message_identity, _message)

EVENTS: dict[str, EventSpec] = {
    "chat.chat_started": EventSpec(lambda p: ("started", _chat_id(p)), _started),
    "chat.addmsguser": MESSAGE,
    "chat.addmsguser_webhook": MESSAGE,  # visitors on WhatsApp, Telegram and other channels
    "chat.web_add_msg_admin": MESSAGE,
    "chat.close": EventSpec(lambda p: ("close", _chat_id(p), str(p["chat"].get("cls_time"))), _closed),
    "chat.explicitly_closed": EventSpec(lambda p: ("left", _chat_id(p), p["event"]), _left),
    "chat.visitor_regular_closed": EventSpec(lambda p: ("left", _chat_id(p), p["event"]), _left),
    "chat.modified": EventSpec(lambda p: ("email", _chat_id(p), (p["chat"].get("email") or "").strip().lower()),
                               _modified),
    "survey.filled": EventSpec(lambda p: ("survey", str((p.get("survey_item") or {}).get("id")), _stars(p)), _survey),
}
