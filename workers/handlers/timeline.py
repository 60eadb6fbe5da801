"""Per-chat timeline: every handled event, in event-time order, bounded and expiring.

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
    member = json.dumps({k: v for k, v in entry.items() if v is not None}, sort_keys=True)
    ended = rt.state.ended_key(event.thread_id) if event.thread_id else rt.keys.timeline(subject)
    rt.redis.register_script(_RECORD)(
        keys=[rt.keys.timeline(subject), ended],
        args=[epoch(event.time) or 0.0, member, rt.settings.timeline_max_events,
              rt.settings.chat_ttl_seconds, rt.settings.ended_chat_ttl_seconds],
    )


def _visitor(event: Event) -> str | None:
    """A visitor waiting in the queue has no chat yet: their timeline is their own."""
    return f"visitor:{event.author_id}" if event.kind is Kind.VISITOR_QUEUED and event.author_id else None


# Bounded, and kept only as long as the rest of the chat's state: once its thread has ended (a rating
# or a tag that arrives after the end included), the ended chat's shorter TTL.
# KEYS: timeline, the thread's ended marker. ARGV: score, entry, max entries, chat TTL, ended TTL.
_RECORD = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
local ttl = ARGV[4]
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then ttl = ARGV[5] end
redis.call('EXPIRE', KEYS[1], ttl)
"""


def read(rt: Runtime, chat_id: str) -> list[dict]:
    return [json.loads(m) for m in rt.redis.zrange(rt.keys.timeline(chat_id), 0, -1)]
