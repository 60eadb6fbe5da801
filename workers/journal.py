"""A chat's story as the workers saw it, the task's counters and the outbound record's entries: kept
in memory while a task runs, written in one pipeline when it ends (``flush``).

Each chat has one timeline (a sorted set by time, bounded, expiring with the chat's other state):
the events (what ``timeline.record`` adds), each delivery with the handlers that ran on it, each
handler that failed (retried or dead-lettered), each effect (sent, or skipped and why) and each
timer that fired. ``chathooks chat`` reads it. An event's entry is deterministic, so a redelivered
task leaves one; a delivery, a handler run and an effect are told each time they happen (the
second run of a delivery finds its effects already done, and says so). No message text is kept
beyond the event's short preview. A task lost before its flush loses nothing: its message is
redelivered and the task runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from chathooks.json_codec import dumps
from chathooks.keys import Keys
from chathooks.observed import Observations
from chathooks.redis_client import PipelinedScript, Write, execute

# Bounded, and kept only as long as the rest of the chat's state: once its thread has ended (a rating
# or a tag that arrives after the end included), the ended chat's shorter TTL.
# KEYS: timeline, the thread's ended marker. ARGV: max entries, chat TTL, ended TTL, then score/entry pairs.
_RECORD = PipelinedScript("""
for i = 4, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[1]) - 1)
local ttl = ARGV[2]
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then ttl = ARGV[3] end
redis.call('EXPIRE', KEYS[1], ttl)
""")

# A delivery is counted processed once, however often its task runs (a lost ack, a task cut short after its
# flush): its dedupe key, claimed by the ingress, is marked. A run that finds the mark is a redelivery.
# KEYS: the delivery's dedupe key, metrics. ARGV: source.
_PROCESSED = PipelinedScript("""
local seen = redis.call('GET', KEYS[1])
if seen == 'processed' then
  redis.call('HINCRBY', KEYS[2], 'redelivered:' .. ARGV[1], 1)
  return 0
end
if seen then redis.call('SET', KEYS[1], 'processed', 'KEEPTTL') end
redis.call('HINCRBY', KEYS[2], 'processed:' .. ARGV[1], 1)
return 1
""")


@dataclass
class _Chat:
    thread_id: str | None = None  # its ended marker gives the timeline the ended chat's TTL
    entries: list[tuple[float, str]] = field(default_factory=list)


class Journal:
    """What one task adds to chats' timelines, the shared counters and others' writes, until ``flush``."""

    def __init__(self, client: redis.Redis, keys: Keys, observations: Observations, *, max_events: int,
                 chat_ttl: int, ended_ttl: int) -> None:
        self._redis = client
        self._keys = keys
        self.observations = observations
        self._limits = (max_events, chat_ttl, ended_ttl)
        self._chats: dict[str, _Chat] = {}
        self._counts: dict[str, int] = {}
        self._later: list[Write] = []
        self._lasting: list[tuple[Write, Callable[[], None] | None]] = []
        self._delivery: dict[str, Any] | None = None

    # --- what happened ----------------------------------------------------------------

    def add(self, chat_id: str, thread_id: str | None, at: float, entry: dict[str, Any]) -> None:
        """One timeline entry for ``chat_id`` (None values left out)."""
        member = dumps({k: v for k, v in entry.items() if v is not None}, sort_keys=True, default=str).decode()
        chat = self._chats.setdefault(chat_id, _Chat())
        chat.thread_id = chat.thread_id or thread_id
        chat.entries.append((at, member))

    def begin_delivery(self, message: dict[str, Any]) -> None:
        """The task's delivery: its handlers are listed on its entry, not one entry each."""
        self._delivery = {"message": message, "done": []}

    def handler(self, chat_id: str | None, thread_id: str | None, name: str, outcome: str, **detail: Any) -> None:
        """A handler run: done (within a delivery: listed on it), retried or dead-lettered."""
        if outcome == "done" and self._delivery is not None:
            self._delivery["done"].append(name)
            return
        if outcome == "done" and not detail.get("attempt"):
            return  # a scheduled evaluation, say: the timer tells of it when it fires
        if chat_id:
            self.add(chat_id, thread_id, time.time(), {"type": "handler", "name": name, "outcome": outcome, **detail})

    def effect(self, chat_id: str | None, thread_id: str | None, name: str, outcome: str, *, source: str,
               reason: str | None = None, **detail: Any) -> None:
        """An effect (``tag``, ``bot_message``, ``list_upsert``) sent, or skipped for ``reason``.

        Told, not counted: the outbound record counts the skips it records, ``count`` the others.
        """
        if chat_id:
            self.add(chat_id, thread_id, time.time(), {"type": "effect", "name": name, "outcome": outcome,
                                                      "source": source, "reason": reason, **detail})

    def late(self, kind: str, due_at: float, now: float) -> None:
        """A timer (``nudge``, ``trigger``, ``retry``) ran at ``now``, its deadline ``due_at``."""
        self.observations.observe("chathooks_timer_lateness_seconds", max(0.0, now - due_at), kind)

    def later(self, write: Write) -> None:
        """A write of someone else's (the outbound record's, a finished job's removal) to go with the flush."""
        self._later.append(write)

    def lasting(self, write: Write, written: Callable[[], None] | None = None) -> None:
        """A write of a fact that stays true (an effect made): kept by ``discard`` and when a flush fails, until a
        flush has written it; then ``written``, if given, is called."""
        self._lasting.append((write, written))

    def processed(self, delivery_id: str, source: str) -> None:
        """The task's delivery is done: counted ``processed`` the first time, ``redelivered`` after."""
        self.later(lambda pipe: _PROCESSED.queue(pipe, (self._keys.dedupe(delivery_id), self._keys.metrics), (source,)))

    def count(self, field_name: str) -> None:
        """One more on a counter of the shared metrics hash (``chathooks.metrics``)."""
        self._counts[field_name] = self._counts.get(field_name, 0) + 1

    def discard(self) -> None:
        """Forget what was not written yet (but what is ``lasting``): a run Redis cut short, about to run again."""
        self._chats, self._counts, self._later, self._delivery = {}, {}, [], None

    # --- written ----------------------------------------------------------------------

    def flush(self, *, force_observations: bool = False) -> None:
        """Write everything since the last flush in one round trip."""
        self._end_delivery()
        chats, counts, self._chats, self._counts = self._chats, self._counts, {}, {}
        later, self._later = self._later, []
        lasting, self._lasting = self._lasting, []
        with self._redis.pipeline(transaction=False) as pipe:
            for write in [*(w for w, _ in lasting), *later]:
                write(pipe)
            for chat_id, chat in chats.items():
                args: list[Any] = [*self._limits]
                for at, member in chat.entries:
                    args += [f"{at:.6f}", member]
                timeline = self._keys.timeline(chat_id)
                ended = self._keys.thread(chat.thread_id, "ended") if chat.thread_id else timeline
                _RECORD.queue(pipe, (timeline, ended), args)
            for name, n in counts.items():
                pipe.hincrby(self._keys.metrics, name, n)
            self.observations.flush(pipe, self._keys.observed, force=force_observations)
            if len(pipe):
                try:
                    execute(pipe)
                except BaseException:
                    self._lasting[:0] = lasting  # written by the next flush, whatever this task's fate
                    raise
        for _, written in lasting:
            if written is not None:
                written()

    def _end_delivery(self) -> None:
        delivery, self._delivery = self._delivery, None
        if delivery is None:
            return
        message = delivery["message"]
        events = message.get("events") or [{}]
        chat_id = next((e.get("chat_id") for e in events if e.get("chat_id")), None)
        thread_id = next((e.get("thread_id") for e in events if e.get("thread_id")), None)
        organization = next((e.get("organization") for e in events if e.get("organization")), None)
        if chat_id:
            self.add(chat_id, thread_id, float(message.get("received_at") or 0.0), {
                "type": "delivery", "id": message.get("id"), "source": message.get("source"),
                "organization": organization, "action": message.get("action"), "outcome": "queued",
                "handlers": delivery["done"], "finished": round(time.time(), 6)})
