"""ChatBot.com webhook calls: validated, and queued as a lead once per messageId."""

from __future__ import annotations

import pytest

from chathooks.events import Kind
from chathooks.platforms.base import InvalidPayload
from chathooks.platforms.chatbot import adapter
from tests.helpers import fixture, fixture_names

SOURCE = "chatbot"


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_fixture_loads(name):
    assert adapter.load(fixture(name, SOURCE))["messageId"]


def test_a_call_is_a_lead_with_what_the_bot_collected(settings):
    call = adapter.load(fixture("webhook_block", SOURCE))
    delivery = adapter.to_delivery(call, settings)
    (lead,) = delivery.events
    assert (delivery.source, lead.kind, lead.source) == (SOURCE, Kind.LEAD, SOURCE)
    assert (lead.customer_email, lead.customer_name) == ("jane@example.org", "Jane Roe")
    assert lead.author_id == "0e6b2f1c-9a7d-4c3e-8b5a-1f2d3c4b5a69"
    assert "attributes" not in lead.raw and "userAttributes" not in lead.raw


def test_the_message_id_is_the_delivery(settings):
    one = adapter.to_delivery(adapter.load(fixture("webhook_block", SOURCE)), settings)
    body = fixture("webhook_block", SOURCE)
    body["attributes"]["order_no"] = "9"  # the same event, whatever else it says
    assert adapter.to_delivery(adapter.load(body), settings).id == one.id
    body["messageId"] = "another"
    assert adapter.to_delivery(adapter.load(body), settings).id != one.id


@pytest.mark.parametrize("email, expected", [(" jane@example.org ", "jane@example.org"), ("", None),
                                             ("not an email", None), (None, None), (7, None)])
def test_only_an_email_counts_as_one(email, expected):
    body = fixture("webhook_block", SOURCE)
    body["userAttributes"]["default_email"] = email
    assert adapter.email_of(adapter.load(body)) == expected


def test_a_call_without_user_attributes_is_a_lead_without_contact(settings):
    body = fixture("webhook_block", SOURCE)
    del body["userAttributes"], body["attributes"]
    (lead,) = adapter.to_delivery(adapter.load(body), settings).events
    assert (lead.customer_email, lead.customer_name) == (None, None)


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.pop("messageId"), "messageId"),
    (lambda b: b.__setitem__("messageId", ""), "messageId"),
    (lambda b: b.pop("node"), "node"),
    (lambda b: b.__setitem__("node", "orders"), "node"),
    (lambda b: b["node"].__setitem__("name", 5), "node"),
    (lambda b: b.__setitem__("userAttributes", []), "userAttributes"),
    (lambda b: b.__setitem__("attributes", "x"), "attributes"),
    (lambda b: b.__setitem__("externalId", 12), "externalId"),
])
def test_malformed_calls_name_the_field(mutate, field):
    body = fixture("webhook_block", SOURCE)
    mutate(body)
    with pytest.raises(InvalidPayload) as info:
        adapter.load(body)
    assert field in info.value.errors
