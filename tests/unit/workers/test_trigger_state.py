"""The triggers' thread state on a real Redis: its script's JSON (cjson) as the client reads it (fakeredis's
cjson is not Redis's: its escapes and its empty table differ)."""

from __future__ import annotations

from workers.trigger_state import Change, TriggerState


def test_values_come_back_as_written_whatever_characters_they_hold(real_redis):
    prefix = real_redis.prefix  # type: ignore[attr-defined]
    state = TriggerState(real_redis, prefix, f"{prefix}schedule", 60, 10)
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
