"""Auto-tagging: rules matched per message as it arrives; tags applied once when the thread ends."""

from __future__ import annotations

from functools import partial

from chathooks.events import Event, Kind, Role
from chathooks.sources.livechat import thread_history, users_of
from workers.retry import attempts
from workers.runtime import Runtime

AUTHORS = (Role.CUSTOMER, Role.AGENT)


def match(event: Event, rt: Runtime) -> None:
    if not event.text or not event.thread_id:
        return
    role = rt.author_role(event)
    if role not in AUTHORS:
        return
    tags = rt.rules.match_tags(event.text, role)
    rt.state.add_tags(event.thread_id, "matched", tags)
    if tags and rt.state.has_ended(event.thread_id):
        apply(event, rt)  # a message that arrived after the end


def tagged(event: Event, rt: Runtime) -> None:
    if event.thread_id and event.tag:
        rt.state.add_tags(event.thread_id, "applied", [event.tag])


def untagged(event: Event, rt: Runtime) -> None:
    if event.thread_id and event.tag:
        rt.state.remove_tag(event.thread_id, "applied", event.tag)


def thread_ended(event: Event, rt: Runtime) -> None:
    """Reconcile with the thread as LiveChat has it (lost or late events), then tag."""
    if not (event.chat_id and event.thread_id):
        return
    chat = rt.outbound.get_chat(event.chat_id, event.thread_id)
    if chat and (chat.get("thread") or {}).get("id") == event.thread_id:
        rt.state.remember_users(event.chat_id, users_of(chat), rt.bot_ids)
        for past in thread_history(chat, rt.bot_ids):
            if past.kind is Kind.MESSAGE and past.text and past.author_role in AUTHORS:
                rt.state.add_tags(event.thread_id, "matched", rt.rules.match_tags(past.text, past.author_role))
        rt.state.add_tags(event.thread_id, "applied", [t for t in chat["thread"].get("tags") or [] if isinstance(t, str)])
    apply(event, rt)


def apply(event: Event, rt: Runtime) -> None:
    chat_id, thread_id = event.chat_id, event.thread_id
    assert chat_id and thread_id
    pending = rt.state.tags(thread_id, "matched") - rt.state.tags(thread_id, "applied")
    attempts(*(partial(tag_once, rt, chat_id, thread_id, tag) for tag in sorted(pending)))


def tag_once(rt: Runtime, chat_id: str, thread_id: str, tag: str) -> None:
    """Tag the thread once; after an unfinished attempt, only if LiveChat does not show the tag yet."""
    rt.once.run(f"tag:{thread_id}:{tag}", lambda: rt.outbound.tag_thread(chat_id, thread_id, tag),
                already=lambda: rt.outbound.tagged(chat_id, thread_id, tag))
    rt.state.add_tags(thread_id, "applied", [tag])
