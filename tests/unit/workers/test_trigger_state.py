"""The triggers' thread state on a real Redis: its script's JSON (cjson) as the client reads it."""

from __future__ import annotations

import uuid

import pytest
import redis

from workers.trigger_state import Change, TriggerState

REAL = "redis://127.0.0.1:6379/15"  # fakeredis's cjson is not Redis's: its escapes and its empty table differ


@pytest.fixture
def real() -> redis.Redis:
    client = redis.Redis.from_url(REAL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"ts:{uuid.uuid4().hex[:8]}:"
    client.prefix = prefix  # type: ignore[attr-defined]
    yield client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_values_come_back_as_written_whatever_characters_they_hold(real):
    prefix = real.prefix  # type: ignore[attr-defined]
    state = TriggerState(real, prefix, f"{prefix}schedule", 60, 10)
    odd = 'Grüße ✓ / "quoted" \\ back\nslash\t\u0001 end'
    change = Change("msg", 1_700_000_000.123456, "c", "d1", ("t1", "t2"), {"email": "a/b@x.org", "a:note": odd})
    snap = state.observe("T1", change, source="livechat", organization="org-1", chat_id="C1",
                         tags_key=f"{prefix}tags", read_tags=True)
    assert snap is not None
    assert snap.view.attributes == {"note": odd}
    assert (snap.view.customer_email, snap.view.last_customer, snap.view.message_facts) == (
        "a/b@x.org", 1_700_000_000.123456, frozenset({"t1", "t2"}))
    assert (snap.source, snap.organization, snap.chat_id, snap.version) == ("livechat", "org-1", "C1", "1")
    again = state.observe("T1", None, source="livechat", organization="org-1", chat_id="C1",
                          tags_key=f"{prefix}tags", read_tags=True)
    assert again is not None and again.view == snap.view
