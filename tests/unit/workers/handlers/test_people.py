"""Who is who in a chat, and whether the bot may speak."""

from __future__ import annotations

import pytest

from chathooks.events import Event, Kind, Role
from chathooks.http import OutboundError
from chathooks.platforms.base import ChatRef
from tests.unit.workers.conftest import (
    AGENT_ID, BOT_ID, CHAT_ID, CUSTOMER_ID, THREAD_ID, deliver, events, records, seed, sent_events,
)
from workers.handlers import people

REF = ChatRef("livechat", CHAT_ID, THREAD_ID)


def unavailable(rt) -> str | None:  # type: ignore[no-untyped-def]
    return people.bot_unavailable(rt, rt.outbound.chats("livechat"))


def message(author_id: str, role: Role | None = None) -> Event:
    return Event(key=f"livechat:{CHAT_ID}:event:x", source="livechat", kind=Kind.MESSAGE, chat_id=CHAT_ID,
                 thread_id=THREAD_ID, author_id=author_id, author_role=role, text="hi")


# --- roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["incoming_chat", "incoming_chat.v3.5"])
def test_incoming_chat_remembers_the_customer_and_recognises_the_bot(dry_rt, name):
    deliver(dry_rt, name)
    assert dry_rt.state.role(CHAT_ID, CUSTOMER_ID) is Role.CUSTOMER
    assert dry_rt.state.role(CHAT_ID, BOT_ID) is Role.BOT  # type "agent" in the chat, but it is our bot


@pytest.mark.parametrize("name", ["user_added_to_chat", "user_added_to_chat.v3.5"])
def test_a_user_added_to_the_chat_is_remembered(dry_rt, name):
    deliver(dry_rt, name)
    assert dry_rt.state.role(CHAT_ID, AGENT_ID) is Role.AGENT


def test_author_role_prefers_the_bot_id_over_what_the_event_says(dry_rt):
    assert dry_rt.author_role(message(BOT_ID, Role.AGENT)) is Role.BOT


def test_author_role_uses_the_event_then_what_we_remember(dry_rt):
    assert dry_rt.author_role(message(AGENT_ID, Role.AGENT)) is Role.AGENT
    assert dry_rt.author_role(message(CUSTOMER_ID)) is None  # dry-run, nothing known, nothing to ask
    deliver(dry_rt, "incoming_chat")
    assert dry_rt.author_role(message(CUSTOMER_ID)) is Role.CUSTOMER


def test_the_handlers_of_one_event_look_its_author_up_once(dry_rt, monkeypatch):
    deliver(dry_rt, "incoming_chat")
    lookups = []
    remembered = dry_rt.state.role
    monkeypatch.setattr(dry_rt.state, "role", lambda *a: lookups.append(a) or remembered(*a))
    event = message(CUSTOMER_ID)
    assert [dry_rt.author_role(event) for _ in range(3)] == [Role.CUSTOMER] * 3
    assert len(lookups) == 1


def test_author_role_asks_get_chat_once_and_remembers(live_rt, livechat):
    seed(livechat)
    assert live_rt.author_role(message(AGENT_ID)) is Role.AGENT
    assert live_rt.author_role(message(CUSTOMER_ID)) is Role.CUSTOMER
    assert live_rt.author_role(message(BOT_ID)) is Role.BOT
    assert len(livechat.calls("get_chat")) == 1


def test_author_role_of_someone_get_chat_does_not_know_is_none(live_rt, livechat):
    seed(livechat)
    assert live_rt.author_role(message("stranger@example.com")) is None


# --- threads and routing status ------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat_deactivated", "chat_deactivated.router", "chat_deactivated.v3.5"])
def test_the_end_of_a_thread_is_remembered(dry_rt, name):
    deliver(dry_rt, name)
    assert dry_rt.state.has_ended(THREAD_ID)


@pytest.mark.parametrize(("name", "status"), [("routing_status_set", "accepting_chats"),
                                              ("routing_status_set.v3.5", "accepting_chats"),
                                              ("routing_status_set.not_accepting", "not_accepting_chats")])
def test_routing_status_webhooks_are_remembered_with_one_spelling(dry_rt, name, status):
    deliver(dry_rt, name)
    assert dry_rt.state.routing_status(BOT_ID) == status


def test_dry_run_without_credentials_lets_the_bot_act_unless_told_otherwise(dry_rt):
    assert unavailable(dry_rt) is None
    deliver(dry_rt, "routing_status_set.not_accepting")
    assert unavailable(dry_rt) == "bot routing status is not_accepting_chats"


def test_live_without_a_bot_id_the_bot_cannot_act(make_live, livechat):
    rt = make_live(livechat, LIVECHAT_BOT_ID="")
    assert unavailable(rt) == "no LIVECHAT_BOT_ID configured"


@pytest.mark.parametrize(("status", "reason"), [("accepting_chats", None),
                                                ("not_accepting_chats", "bot routing status is not_accepting_chats"),
                                                ("offline", "bot routing status is offline")])
def test_live_routing_status_is_fetched_once_and_remembered(live_rt, livechat, status, reason):
    livechat.routing_statuses[BOT_ID] = status
    assert unavailable(live_rt) == reason
    assert unavailable(live_rt) == reason
    assert len(livechat.calls("list_routing_statuses")) == 1
    assert live_rt.state.routing_status(BOT_ID) == status


def test_a_bot_missing_from_the_routing_statuses_is_unknown(live_rt, livechat):
    del livechat.routing_statuses[BOT_ID]
    assert unavailable(live_rt) == "bot routing status is unknown"


def test_a_routing_status_webhook_overrides_what_was_fetched(live_rt, livechat):
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"
    assert unavailable(live_rt)
    deliver(live_rt, "routing_status_set")
    assert unavailable(live_rt) is None


# --- sending as the bot --------------------------------------------------------------------


def test_send_as_bot_sends_once_per_name(live_rt, livechat):
    seed(livechat)
    people.send_as_bot(live_rt, REF, "rating:T:1", "Thanks!")
    people.send_as_bot(live_rt, REF, "rating:T:1", "Thanks!")
    people.send_as_bot(live_rt, REF, "rating:T:0", "Sorry!")
    assert [e["event"]["text"] for e in sent_events(livechat)] == ["Thanks!", "Sorry!"]
    assert sent_events(livechat)[0]["event"]["custom_id"] == "rating:T:1"


def bot_events(livechat, custom_id: str) -> list[dict]:
    return [e for e in livechat.chat(CHAT_ID)["thread"]["events"] if e.get("custom_id") == custom_id]


def test_a_send_that_landed_before_its_answer_was_lost_is_not_sent_again(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("send_event", close=True, process=True)  # LiveChat posted it; the answer never came
    with pytest.raises(OutboundError) as caught:
        people.send_as_bot(live_rt, REF, "nudge:T:1", "Hello")
    assert caught.value.transient
    assert not livechat.calls("get_chat"), "a first attempt sends without looking"

    people.send_as_bot(live_rt, REF, "nudge:T:1", "Hello")  # the retry finds it by its custom_id
    assert len(sent_events(livechat)) == 1 and len(bot_events(livechat, "nudge:T:1")) == 1
    assert len(livechat.calls("get_chat")) == 1
    assert live_rt.once.done("nudge:T:1")


def test_a_send_that_never_landed_is_sent_by_the_retry(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("send_event", close=True)
    with pytest.raises(OutboundError):
        people.send_as_bot(live_rt, REF, "nudge:T:1", "Hello")
    people.send_as_bot(live_rt, REF, "nudge:T:1", "Hello")
    assert len(sent_events(livechat)) == 2 and len(bot_events(livechat, "nudge:T:1")) == 1
    assert live_rt.once.done("nudge:T:1")


def test_send_as_bot_records_a_skip_when_the_bot_may_not_act(live_rt, livechat):
    seed(livechat)
    livechat.routing_statuses[BOT_ID] = "not_accepting_chats"
    people.send_as_bot(live_rt, REF, "nudge:T:1", "Hello")
    assert sent_events(livechat) == []
    (record,) = records(live_rt, "send_event")
    assert record["outcome"] == "skipped" and record["text"] == "Hello"
    assert not live_rt.once.done("nudge:T:1")


def test_user_removed_changes_no_roles(dry_rt):
    deliver(dry_rt, "user_added_to_chat", "user_removed_from_chat")
    assert dry_rt.state.role(CHAT_ID, AGENT_ID) is Role.AGENT
    assert [e.kind for e in events("user_removed_from_chat", dry_rt.settings)] == [Kind.USER_REMOVED]
