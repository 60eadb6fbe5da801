"""Who is who in a chat, and whether our bot may speak."""

from __future__ import annotations

from chathooks.events import Event
from workers.runtime import Runtime

ACCEPTING = "accepting_chats"


def remember_users(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.users:
        rt.state.remember_users(event.chat_id, event.users, rt.bot_ids)


def routing_status(event: Event, rt: Runtime) -> None:
    if event.author_id and event.status:
        rt.state.set_routing_status(event.author_id, event.status)


def end_thread(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.thread_id:
        rt.state.end_thread(event.chat_id, event.thread_id)


def bot_unavailable(rt: Runtime) -> str | None:
    """Why the bot may not act now, or None when it may (it is ``accepting_chats``)."""
    bot = rt.settings.livechat.bot_id
    if bot is None:
        return None if rt.outbound.dry_run else "no LIVECHAT_BOT_ID configured"
    status = rt.state.routing_status(bot)
    if status is None:
        status = rt.outbound.routing_status(bot)
        if status is not None:
            rt.state.set_routing_status(bot, status)
    if status is None and rt.outbound.dry_run:
        return None  # nothing to ask in dry-run without credentials
    return None if status == ACCEPTING else f"bot routing status is {status or 'unknown'}"


def send_as_bot(rt: Runtime, chat_id: str, once_name: str, text: str) -> None:
    """Send ``text`` into the chat as the bot, once for ``once_name``, if the bot may act now."""
    reason = bot_unavailable(rt)
    if reason:
        rt.outbound.record("send_event", "skipped", chat_id=chat_id, text=text, reason=reason)
        return
    # The once name is the event's custom_id, so a retry can tell whether a crashed attempt's send landed.
    rt.once.run(once_name, lambda: rt.outbound.send_message(chat_id, text, custom_id=once_name),
                already=lambda: rt.outbound.sent(chat_id, once_name))
