from __future__ import annotations

from chathooks.events import Event, Kind
from workers.dispatch import dispatch
from workers.handlers import timeline
from workers.runtime import Runtime


def event(n: int, time: str, chat: str = "C1") -> Event:
    return Event(key=f"livechat:{chat}:event:{n}", source="livechat", kind=Kind.MESSAGE, chat_id=chat,
                 thread_id="T1", text=f"message {n}", time=time)


def test_timeline_is_ordered_by_event_time_and_idempotent(settings, fake_redis):
    rt = Runtime.build(settings, fake_redis)
    late, early = event(2, "2025-09-01T10:00:02.000000Z"), event(1, "2025-09-01T10:00:01.000000Z")
    dispatch([late, early, late], rt)
    rt.journal.flush()
    assert [e["key"] for e in timeline.read(rt, "C1")] == [early.key, late.key]


def test_timeline_is_bounded_and_expires(settings, fake_redis):
    rt = Runtime.build(settings, fake_redis)
    for n in range(settings.timeline_max_events + 25):
        timeline.record(event(n, f"2025-09-01T10:{n // 60 % 60:02d}:{n % 60:02d}.000000Z"), rt)
    rt.journal.flush()
    key = rt.keys.timeline("C1")
    assert fake_redis.zcard(key) == settings.timeline_max_events
    assert 0 < fake_redis.ttl(key) <= settings.chat_ttl_seconds


def test_events_without_a_chat_are_not_recorded(settings, fake_redis):
    rt = Runtime.build(settings, fake_redis)
    timeline.record(Event(key="k", source="livechat", kind=Kind.ROUTING_STATUS, status="accepting_chats"), rt)
    assert fake_redis.keys("*") == []


def test_once_the_thread_ends_the_timeline_keeps_the_ended_chats_ttl(settings, fake_redis):
    rt = Runtime.build(settings, fake_redis)
    key = rt.keys.timeline("C1")
    timeline.record(event(1, "2025-09-01T10:00:01.000000Z"), rt)
    rt.journal.flush()
    assert fake_redis.ttl(key) > settings.ended_chat_ttl_seconds
    rt.state.end_thread("C1", "T1")
    rated_late = Event(key="livechat:C1:rated", source="livechat", kind=Kind.RATED, chat_id="C1", thread_id="T1",
                       rating=1, time="2025-09-01T10:05:00.000000Z")
    timeline.record(rated_late, rt)
    rt.journal.flush()
    assert 0 < fake_redis.ttl(key) <= settings.ended_chat_ttl_seconds
    assert len(timeline.read(rt, "C1")) == 2
    # ...and so do the handlers' and effects' entries written with it
