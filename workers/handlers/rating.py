"""Rating reactions: one reply per rating, whichever of its two signals arrives."""

from __future__ import annotations

from chathooks.events import Event
from workers.handlers.people import send_as_bot
from workers.handlers.tagging import tag_once
from workers.retry import attempts
from workers.runtime import Runtime


def react(event: Event, rt: Runtime) -> None:
    rule = rt.rules.rating
    if rule is None or event.rating is None or not (event.chat_id and event.thread_id):
        return
    chat_id, thread_id, bad = event.chat_id, event.thread_id, event.rating == 0
    text = rule.bad if bad else rule.good

    def reply() -> None:
        if _active(event, rt):
            send_as_bot(rt, chat_id, f"rating:{thread_id}:{event.rating}", text)
        else:
            rt.outbound.record("send_event", "skipped", chat_id=chat_id, text=text, reason="chat inactive")

    def tag() -> None:
        if bad and rule.bad_tag:
            tag_once(rt, chat_id, thread_id, rule.bad_tag)

    attempts(reply, tag)


def cancelled(event: Event, rt: Runtime) -> None:
    rt.outbound.record("rating_cancelled", "recorded", chat_id=event.chat_id, thread_id=event.thread_id)


def _active(event: Event, rt: Runtime) -> bool:
    chat = rt.outbound.get_chat(event.chat_id)  # type: ignore[arg-type]
    if chat is None:
        return not rt.state.has_ended(event.thread_id)  # type: ignore[arg-type]
    thread = chat.get("thread") or {}
    return thread.get("id") == event.thread_id and bool(thread.get("active"))
