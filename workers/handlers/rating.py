"""Rating reactions: one reply per rating, whichever of its two signals arrives."""

from __future__ import annotations

from chathooks.events import Event
from chathooks.platforms.base import ChatRef
from workers.handlers.people import send_as_bot_while_active
from workers.handlers.tagging import tag_once
from workers.retry import attempts
from workers.runtime import Runtime


def react(event: Event, rt: Runtime) -> None:
    rule = rt.rules.rating
    if rule is None or event.rating is None or not (event.chat_id and event.thread_id):
        return
    chat, bad = ChatRef.of(event), event.rating == 0
    text = rule.bad if bad else rule.good

    def reply() -> None:
        if _active(chat, rt):  # and if it ends between this look and the message, the message is skipped too
            send_as_bot_while_active(rt, chat, f"rating:{chat.thread_id}:{event.rating}", text)
        else:
            chats = rt.outbound.chats(chat.source, chat.organization)
            chats.skipped("message", chat, "chat inactive", code="chat_inactive", text=text)

    def tag() -> None:
        if bad and rule.bad_tag:
            tag_once(rt, chat, rule.bad_tag)

    attempts(reply, tag)


def cancelled(event: Event, rt: Runtime) -> None:
    rt.outbound.record("rating_cancelled", "recorded", chat_id=event.chat_id, thread_id=event.thread_id)


def _active(chat: ChatRef, rt: Runtime) -> bool:
    active = rt.outbound.chats(chat.source, chat.organization).thread_active(chat)
    if active is None:  # the platform cannot be asked: what we know of the thread
        return not rt.state.has_ended(chat.thread_id)  # type: ignore[arg-type]
    return active
