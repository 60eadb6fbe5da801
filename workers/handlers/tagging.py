"""Auto-tagging: rules matched per message as it arrives; tags applied once when the thread ends."""

from __future__ import annotations

import logging
from functools import partial

from chathooks.events import Event, Kind, Role
from chathooks.platforms.base import ChatRef
from chathooks.rules import tags_by
from workers.retry import attempts
from workers.runtime import Runtime

log = logging.getLogger(__name__)

AUTHORS = (Role.CUSTOMER, Role.AGENT)


def match(event: Event, rt: Runtime) -> None:
    if not event.text or not event.thread_id:
        return
    matched = rt.rules.text_matches(event.text)
    if not matched:
        return  # no tag, whoever wrote it: the author's role (often a round trip to learn) is not needed
    role = rt.author_role(event)
    if role not in AUTHORS:
        return
    if rt.state.add_tags(event.thread_id, "matched", tags_by(matched, role)):
        apply(event, rt)  # a message that arrived after the end


def tagged(event: Event, rt: Runtime) -> None:
    if event.thread_id and event.tag:
        rt.state.add_tags(event.thread_id, "applied", [event.tag])
        if event.chat_id:
            rt.profiles.tagged(event.source, event.chat_id, [event.tag])


def untagged(event: Event, rt: Runtime) -> None:
    if event.thread_id and event.tag:
        rt.state.remove_tag(event.thread_id, "applied", event.tag)


def thread_ended(event: Event, rt: Runtime) -> None:
    """Reconcile with the thread as the platform has it (lost or late events), then tag."""
    if not (event.chat_id and event.thread_id):
        return
    chats = rt.outbound.chats(event.source, event.organization)
    thread = chats.fetch_thread(ChatRef.of(event))
    if thread is not None:
        rt.state.remember_users(event.chat_id, thread.users, chats.bot_ids)
        for past in thread.history:
            if past.kind is Kind.MESSAGE and past.text and past.author_role in AUTHORS:
                rt.state.add_tags(event.thread_id, "matched", rt.rules.match_tags(past.text, past.author_role))
        rt.state.add_tags(event.thread_id, "applied", thread.tags)
        rt.profiles.tagged(event.source, event.chat_id, thread.tags)
    apply(event, rt)


def apply(event: Event, rt: Runtime) -> None:
    chat = ChatRef.of(event)
    assert chat.thread_id
    matched, applied = rt.state.tag_sets(chat.thread_id, "matched", "applied")
    pending = matched - applied
    attempts(*(partial(tag_once, rt, chat, tag) for tag in sorted(pending)))


def tag_once(rt: Runtime, chat: ChatRef, tag: str) -> None:
    """Tag the thread once; after an unfinished attempt, only if the platform does not show the tag yet."""
    chats = rt.outbound.chats(chat.source, chat.organization)
    if (reason := chats.untaggable(tag)) is not None:
        log.warning("tag %r not applied to %s chat %s: %s", tag, chat.source, chat.chat_id, reason)
        chats.skipped("tag", chat, reason, code="no_subject", tag=tag)
        return
    ran, _ = rt.once_for(chats.dry_run).run(f"tag:{chat.thread_id}:{tag}", lambda: chats.tag(chat, tag),
                                            already=lambda: chats.tag_landed(chat, tag))
    if not ran:
        chats.already_done("tag", chat, tag=tag)
    rt.state.add_tags(chat.thread_id, "applied", [tag])  # type: ignore[arg-type]
    rt.profiles.tagged(chat.source, chat.chat_id, [tag])
