"""Per-chat timeline: every handled event, in event-time order (see ``workers.journal``).

Entries are deterministic, so recording an event twice (a redelivered task) leaves one entry.
"""

from __future__ import annotations

import json

from chathooks.events import Event, Kind, epoch
from workers.runtime import Runtime

TEXT_PREVIEW = 200


def record(event: Event, rt: Runtime) -> None:
    subject = event.chat_id or _visitor(event)
    if subject is None:
        return
    entry = {
        "key": event.key,
        "kind": event.kind,
        "thread_id": event.thread_id,
        "author_role": event.author_role,
        "time": event.time,
        "text": (event.text or "")[:TEXT_PREVIEW] or None,
        "rating": event.rating,
        "tag": event.tag,
    }
    rt.journal.add(subject, event.thread_id, epoch(event.time) or 0.0, entry)


def _visitor(event: Event) -> str | None:
    """A visitor waiting in the queue has no chat yet: their timeline is their own."""
    return f"visitor:{event.author_id}" if event.kind is Kind.VISITOR_QUEUED and event.author_id else None


def read(rt: Runtime, chat_id: str) -> list[dict]:
    return [json.loads(m) for m in rt.redis.zrange(rt.keys.timeline(chat_id), 0, -1)]
