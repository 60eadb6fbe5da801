"""Schemas and normalisation of LiveChat v3.5/v3.6 webhooks, over the fixtures."""

from __future__ import annotations

import pytest

from chathooks.events import Delivery, Event, Kind, Role
from chathooks.platforms.livechat import adapter as livechat
from tests.helpers import fixture, fixture_names

BOT = "9f3c1a7e0b2d4c6e8a1b3d5f7e9c0a2b"
CUSTOMER = "0e6b2f1c-9a7d-4c3e-8b5a-1f2d3c4b5a69"


def deliver(name: str, settings) -> Delivery | None:  # type: ignore[no-untyped-def]
    return livechat.to_delivery(livechat.load_envelope(fixture(name)), settings)


def kinds(delivery: Delivery | None) -> list[Kind]:
    return [e.kind for e in delivery.events] if delivery else []


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_passes_the_envelope_schema(name):
    envelope = livechat.load_envelope(fixture(name))
    assert "secret_key" not in envelope


@pytest.mark.parametrize("name, expected", [
    ("incoming_chat", [Kind.CHAT_STARTED, Kind.FORM_FILLED, Kind.MESSAGE]),
    ("incoming_event", [Kind.MESSAGE]),
    ("incoming_event.agent_message", [Kind.MESSAGE]),
    ("incoming_event.filled_form", [Kind.FORM_FILLED]),
    ("incoming_event.rating", [Kind.RATED]),
    ("incoming_event.rating_canceled", [Kind.RATING_CANCELLED]),
    ("chat_deactivated", [Kind.CHAT_ENDED]),
    ("chat_deactivated.router", [Kind.CHAT_ENDED]),
    ("thread_tagged", [Kind.TAGGED]),
    ("thread_untagged", [Kind.UNTAGGED]),
    ("thread_properties_updated", [Kind.RATED]),
    ("thread_properties_updated.good", [Kind.RATED]),
    ("thread_properties_deleted", [Kind.RATING_CANCELLED]),
    ("routing_status_set", [Kind.ROUTING_STATUS]),
    ("routing_status_set.not_accepting", [Kind.ROUTING_STATUS]),
    ("user_added_to_chat", [Kind.USER_ADDED]),
    ("user_removed_from_chat", [Kind.USER_REMOVED]),
    ("events_marked_as_seen", []),
    ("agent_created", []),
])
def test_actions_normalise_to_events(name, expected, settings):
    assert kinds(deliver(name, settings)) == expected


@pytest.mark.parametrize("action", sorted({n.split(".")[0] for n in fixture_names() if ".v3.5" in n}))
def test_v35_and_v36_shapes_give_the_same_events(action, settings):
    v35, v36 = deliver(f"{action}.v3.5", settings), deliver(action, settings)
    strip = lambda d: [(e.key, e.kind, e.author_role, e.text, e.status, e.rating, e.customer_email)  # noqa: E731
                       for e in d.events] if d else []
    assert strip(v35) == strip(v36)
    if v36:
        assert v35.id == v36.id


def test_incoming_chat_carries_users_customer_and_history(settings):
    started, form, message = deliver("incoming_chat", settings).events
    assert started.customer_email == "jane@example.org"
    assert started.customer_name == "Jane Roe"
    assert {u.id for u in started.users} >= {CUSTOMER, BOT}
    assert "events" not in started.raw["thread"]
    assert form.customer_email == "jane@example.org"
    assert (message.author_role, message.author_id) == (Role.CUSTOMER, CUSTOMER)
    assert message.text.startswith("Hi, I want a refund")


def test_the_same_thread_event_has_the_same_key_from_either_webhook(settings):
    from_chat = {e.key for e in deliver("incoming_chat", settings).events}
    body = fixture("incoming_event")
    body["payload"]["event"] = fixture("incoming_chat")["payload"]["chat"]["thread"]["events"][1]
    from_event = livechat.to_delivery(livechat.load_envelope(body), settings).events[0].key
    assert from_event in from_chat


def test_configured_bot_is_recognised(settings):
    from tests.conftest import make_settings

    with_bot = make_settings(LIVECHAT_BOT_ID=BOT)
    assert deliver("incoming_event.bot_message", with_bot).events[0].author_role == Role.BOT
    assert deliver("incoming_event.bot_message", settings).events[0].author_role is None


def test_rating_signals(settings):
    assert deliver("thread_properties_updated", settings).events[0].rating == 0
    assert deliver("thread_properties_updated.good", settings).events[0].rating == 1
    assert deliver("incoming_event.rating", settings).events[0].rating == 0


def test_rating_comment_alone_is_not_an_event(settings):
    body = fixture("thread_properties_updated")
    body["payload"]["properties"] = {"rating": {"comment": "meh"}}
    assert livechat.to_delivery(livechat.load_envelope(body), settings) is None


def test_routing_status_spellings_are_normalised(settings):
    assert deliver("routing_status_set.v3.5", settings).events[0].status == "accepting_chats"
    assert deliver("routing_status_set", settings).events[0].status == "accepting_chats"


def test_recurring_state_actions_use_the_short_dedupe_window(settings):
    assert deliver("thread_tagged", settings).dedupe_ttl == settings.state_dedupe_ttl_seconds
    assert deliver("routing_status_set", settings).dedupe_ttl == settings.state_dedupe_ttl_seconds
    assert deliver("incoming_event", settings).dedupe_ttl == settings.dedupe_ttl_seconds
    assert deliver("chat_deactivated", settings).dedupe_ttl == settings.dedupe_ttl_seconds


def test_events_without_a_platform_time_get_the_receive_time(settings):
    ended = deliver("chat_deactivated", settings).events[0]
    assert ended.time and ended.time.endswith("Z")


def test_message_round_trips_through_the_queue_format(settings):
    delivery = deliver("incoming_chat", settings)
    assert Delivery.events_of(delivery.to_message()) == list(delivery.events)
    assert all(isinstance(e, Event) for e in Delivery.events_of(delivery.to_message()))
