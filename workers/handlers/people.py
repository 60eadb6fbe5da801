"""Who is who in a chat, and whether our bot may speak."""

from __future__ import annotations

from chathooks.events import Event
from chathooks.http import OutboundError
from chathooks.platforms.base import ChatRef
from workers.outbound import Chats
from workers.runtime import Runtime

ACCEPTING = "accepting_chats"


def remember_users(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.users:
        bots = rt.outbound.chats(event.source, event.organization).bot_ids
        rt.state.remember_users(event.chat_id, event.users, bots)


def routing_status(event: Event, rt: Runtime) -> None:
    if event.author_id and event.status:
        rt.state.set_routing_status(event.author_id, event.status)


def end_thread(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.thread_id:
        rt.state.end_thread(event.chat_id, event.thread_id)


def bot_unavailable(rt: Runtime, chats: Chats) -> str | None:
    """Why the platform's bot may not act now, or None when it may (it is ``accepting_chats``)."""
    bot = chats.bot_id
    if bot is None:
        return None if chats.dry_run else chats.no_bot
    status = rt.state.routing_status(bot)
    if status is None:
        status = chats.bot_status()
        if status is not None:
            rt.state.set_routing_status(bot, status)
    if status is None and chats.dry_run:
        return None  # nothing to ask in dry-run without credentials
    return None if status == ACCEPTING else f"bot routing status is {status or 'unknown'}"


def send_as_bot(rt: Runtime, chat: ChatRef, once_name: str, text: str) -> None:
    """Post ``text`` into the chat as the bot, once for ``once_name``, if the bot may act now."""
    chats = rt.outbound.chats(chat.source, chat.organization)
    reason = bot_unavailable(rt, chats)
    if reason:
        chats.skipped("message", chat, reason, code="bot_not_accepting", text=text)
        return
    # The once name is the message's custom_id, so a retry can tell whether a crashed attempt's message landed
    # (platforms without custom ids look for the text among our messages since that attempt began).
    once = rt.once_for(chats.dry_run)
    ran, _ = once.run(once_name, lambda: chats.post_bot_message(chat, text, custom_id=once_name),
                      already=lambda: chats.bot_message_landed(chat, once_name, text,
                                                               once.attempted_at(once_name) or 0.0))
    if not ran:
        chats.already_done("message", chat)


def send_as_bot_while_active(rt: Runtime, chat: ChatRef, once_name: str, text: str) -> None:
    """``send_as_bot``; a chat that ended meanwhile (the platform answers ``chat_inactive``) is a recorded
    skip, not an error: no retry could message it."""
    try:
        send_as_bot(rt, chat, once_name, text)
    except OutboundError as exc:
        if exc.type != "chat_inactive":
            raise
        rt.outbound.chats(chat.source, chat.organization).skipped("message", chat, "chat inactive",
                                                                  code="chat_inactive", text=text)
