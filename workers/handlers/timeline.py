"""Per-chat timeline: every handled event, in event-time order, bounded and expiring.

Entries are deterministic, so recording an event twice (a redelivered task) leaves one entry.
"""

from __future__ import annotations

import json

from chathooks.events import Event, epoch
from workers.runtime import Runtime

TEXT_PREVIEW = 200


def record(event: Event, rt: Runtime) -> None:
    if event.chat_id is None:
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
    key = rt.keys.timeline(event.chat_id)
    with rt.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {member: epoch(event.time) or 0.0})
        pipe.zremrangebyrank(key, 0, -rt.settings.timeline_max_events - 1)
        pipe.expire(key, rt.settings.chat_ttl_seconds)
        pipe.execute()


def read(rt: Runtime, chat_id: str) -> list[dict]:
    return [json.loads(m) for m in rt.redis.zrange(rt.keys.timeline(chat_id), 0, -1)]
