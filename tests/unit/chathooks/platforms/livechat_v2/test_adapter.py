"""Schemas and normalisation of legacy LiveChat v2 webhooks: every row of SPEC §5's v2 table, over the fixtures."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from chathooks.events import Delivery, Kind, Role
from chathooks.platforms.base import InvalidPayload
from chathooks.platforms.livechat_v2 import adapter
from tests.conftest import make_settings
from tests.helpers import fixture, fixture_names

SOURCE = "livechat_v2"
CHAT = "PJ0MRSHTDG"
SCOPE = "PJ0MRSHTDG:1756720800"  # the chat and its start: one conversation
VISITOR = "S1756720790.5c0e2f7a1b"
BOT = "9f3c1a7e0b2d4c6e8a1b3d5f7e9c0a2b"


def body(name: str) -> dict[str, Any]:
    """A fixture as the ingress hands it on: its ``token`` dropped."""
    b = fixture(name, SOURCE)
    b.pop("token")
    return b


def deliver(name_or_body: str | dict[str, Any], settings) -> Delivery | None:  # type: ignore[no-untyped-def]
    b = body(name_or_body) if isinstance(name_or_body, str) else name_or_body
    return adapter.to_delivery(b, settings)


def invalid(b: dict[str, Any], settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidPayload) as info:
        adapter.to_delivery(b, settings)
    return info.value.errors


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_fixture_is_accepted_and_carries_a_token(name, settings):
    assert fixture(name, SOURCE)["token"]
    assert fixture(name, SOURCE)["event_type"] == name.split(".")[0]
    deliver(name, settings)


@pytest.mark.parametrize("name, expected", [
    ("chat_started", [Kind.CHAT_STARTED]),
    ("chat_started.numeric_license", [Kind.CHAT_STARTED]),
    ("chat_ended", [Kind.CHAT_ENDED] + [Kind.MESSAGE] * 5),
    ("chat_changed", [Kind.TAGGED, Kind.TAGGED]),
    ("visitor_queued", [Kind.VISITOR_QUEUED]),
    ("ticket_created", [Kind.LEAD]),
])
def test_event_types_normalise_to_events(name, expected, settings):
    delivery = deliver(name, settings)
    assert [e.kind for e in delivery.events] == expected
    assert delivery.source == SOURCE and delivery.action == name.split(".")[0]
    assert {e.source for e in delivery.events} == {SOURCE}
    assert {e.organization for e in delivery.events} == {"license:1025707"}
    assert all(e.key.startswith(f"{SOURCE}:") for e in delivery.events)


@pytest.mark.parametrize("event_type", ["canned_response_changed", "chat_transferred", "x"])
def test_other_event_types_are_not_automated(event_type, settings):
    b = body("canned_response_changed")
    b["event_type"] = event_type
    assert deliver(b, settings) is None


def test_chat_started_gives_the_customer_visitor_first_and_the_survey_filling_in(settings):
    (started,) = deliver("chat_started", settings).events
    assert (started.chat_id, started.thread_id) == (CHAT, SCOPE)  # a v2 conversation is its own thread
    assert (started.customer_email, started.customer_name) == ("jane@example.org", "Jane Roe")
    assert started.time == "2025-09-01T10:00:00Z"
    (user,) = started.users
    assert (user.id, user.type, user.email) == (VISITOR, "customer", "jane@example.org")


def test_the_visitors_own_email_wins_over_the_survey(settings):
    b = body("chat_started")
    b["visitor"]["email"] = "jane.roe@example.org"
    (started,) = deliver(b, settings).events
    assert started.customer_email == "jane.roe@example.org"


def test_a_chat_without_visitor_or_survey_has_no_customer(settings):
    b = body("chat_started")
    del b["visitor"], b["pre_chat_survey"]
    (started,) = deliver(b, settings).events
    assert (started.customer_email, started.customer_name, started.users) == (None, None, ())


def test_chat_ended_ends_with_the_customer_then_turns_the_transcript_into_messages(settings):
    ended, *messages = deliver("chat_ended", settings).events
    assert [(m.author_role, m.author_id) for m in messages] == [
        (Role.CUSTOMER, VISITOR), (Role.INTERNAL, "supervisor@example.com"), (Role.AGENT, "agent.smith@example.com"),
        (Role.CUSTOMER, VISITOR), (Role.AGENT, "agent.smith@example.com")]
    assert messages[0].text == "Hi, I want a refund for order #1042"
    assert messages[0].time == "2025-09-01T10:00:01Z"
    assert len({m.key for m in messages}) == 5
    assert {(m.chat_id, m.thread_id) for m in [*messages, ended]} == {(CHAT, SCOPE)}
    assert (ended.kind, ended.time, ended.customer_email) == (Kind.CHAT_ENDED, "2025-09-01T10:10:00Z",
                                                               "jane@example.org")


def test_the_transcripts_unknown_authors_and_empty_messages_are_left_out(settings):
    b = body("chat_ended")
    b["chat"]["messages"] = [{"user_type": "robot", "text": "x", "timestamp": 1},
                             {"user_type": "visitor", "text": "", "timestamp": 2},
                             {"user_type": "agent", "text": "Hello", "timestamp": 3}]
    assert [e.kind for e in deliver(b, settings).events] == [Kind.CHAT_ENDED, Kind.MESSAGE]


def test_our_bots_messages_in_the_transcript_are_the_bots():
    b = body("chat_ended")
    b["chat"]["messages"][2]["agent_id"] = BOT
    messages = deliver(b, make_settings(LIVECHAT_BOT_ID=BOT)).events[1:]
    assert messages[2].author_role is Role.BOT


def test_chat_changed_gives_the_chats_current_tags(settings):
    delivery = deliver("chat_changed", settings)
    assert [(e.tag, e.thread_id) for e in delivery.events] == [("billing", SCOPE), ("refund", SCOPE)]
    assert delivery.dedupe_ttl == settings.state_dedupe_ttl_seconds  # tags may change back and forth


def test_chat_changed_without_tags_is_not_automated(settings):
    b = body("chat_changed")
    b["chat"]["tags"] = []
    assert deliver(b, settings) is None


def test_visitor_queued_is_recorded_for_the_visitor(settings):
    delivery = deliver("visitor_queued", settings)
    (queued,) = delivery.events
    assert (queued.chat_id, queued.author_id, queued.author_role) == (None, VISITOR, Role.CUSTOMER)
    assert delivery.dedupe_ttl == settings.state_dedupe_ttl_seconds  # a visitor queues again for a later chat


def test_ticket_created_is_a_lead_from_its_requester(settings):
    delivery = deliver("ticket_created", settings)
    (lead,) = delivery.events
    assert (lead.customer_email, lead.customer_name, lead.chat_id) == ("john.doe@example.net", "John Doe", None)
    assert delivery.dedupe_ttl == settings.dedupe_ttl_seconds


def test_no_event_keeps_the_token_or_the_raw_body(settings):
    for name in fixture_names(SOURCE):
        delivery = deliver(name, settings)
        if delivery:
            message = json.dumps(delivery.to_message())
            assert "v2-api-token" not in message and "Wroclaw" not in message


# --- deduplication -------------------------------------------------------------------------


def test_a_retry_has_the_same_delivery_id(settings):
    for name in ("chat_started", "chat_ended", "chat_changed", "visitor_queued", "ticket_created"):
        assert deliver(name, settings).id == deliver(name, settings).id


def test_the_license_as_a_number_or_a_string_is_the_same_delivery(settings):
    assert deliver("chat_started", settings).id == deliver("chat_started.numeric_license", settings).id


def test_event_unique_id_identifies_the_delivery_when_present(settings):
    b = body("chat_ended")
    later = copy.deepcopy(b)
    later["chat"]["ended_timestamp"] += 60
    assert deliver(b, settings).id == deliver(later, settings).id
    other = copy.deepcopy(b)
    other["event_unique_id"] = "another"
    assert deliver(other, settings).id != deliver(b, settings).id


def test_without_event_unique_id_the_chat_and_its_timestamp_identify_it(settings):
    b = body("chat_ended")
    del b["event_unique_id"]
    later = copy.deepcopy(b)
    later["chat"]["ended_timestamp"] += 60
    assert deliver(b, settings).id != deliver(later, settings).id
    started = body("chat_started")
    assert deliver(started, settings).id != deliver(b, settings).id  # the event type counts too


@pytest.mark.parametrize("field, value", [
    ("license_id", "1025708"), ("chat.tags", ["billing"]), ("ticket.events", [{"date": "2025-09-02T08:00:00Z"}]),
])
def test_what_identifies_a_delivery_tells_two_apart(field, value, settings):
    name = {"chat.tags": "chat_changed", "ticket.events": "ticket_created"}.get(field, "chat_started")
    b = body(name)
    other = copy.deepcopy(b)
    *parents, key = field.split(".")
    target = other
    for p in parents:
        target = target[p]
    target[key] = value
    assert deliver(b, settings).id != deliver(other, settings).id


def test_licenses_keep_deliveries_apart_in_the_organization(settings):
    b = body("chat_started")
    b["license_id"] = "99"
    assert deliver(b, settings).events[0].organization == "license:99"


# --- field-level errors --------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, [], {}, "", 1.5])
def test_a_license_that_is_not_a_string_or_number_is_invalid(value, settings):
    b = body("chat_started")
    b["license_id"] = value
    assert "license_id" in invalid(b, settings)


def test_missing_envelope_fields_are_named(settings):
    errors = invalid({"chat": {}}, settings)
    assert set(errors) == {"event_type", "license_id"}


@pytest.mark.parametrize("name, drop", [
    ("chat_started", "chat"), ("chat_ended", "chat"), ("chat_changed", "chat"),
    ("visitor_queued", "visitor"), ("ticket_created", "ticket"),
])
def test_the_data_type_an_event_needs_is_required(name, drop, settings):
    b = body(name)
    del b[drop]
    assert drop in invalid(b, settings)


@pytest.mark.parametrize("path, value", [
    (("chat", "id"), ""), (("chat", "ended_timestamp"), "soon"), (("chat", "ended_timestamp"), 10 ** 20),
    (("chat", "messages", 0, "user_type"), None), (("chat", "messages", 0, "text"), 5), (("chat", "tags"), "x"),
    (("visitor", "id"), 7), (("pre_chat_survey",), {"email": "x"}),
])
def test_malformed_fields_are_named_where_they_are(path, value, settings):
    b = body("chat_ended")
    target: Any = b
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    errors: Any = invalid(b, settings)
    for part in path:
        assert part in errors, (path, errors)
        errors = errors[part]
