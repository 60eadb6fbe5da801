"""Normalisation of Live Helper Chat calls: every event of SPEC §5, its dedupe key, what counts for nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chathooks.events import Kind, Role
from chathooks.platforms.base import InvalidPayload
from chathooks.platforms.lhc import adapter
from chathooks.platforms.lhc.rules import LhcRule
from tests.helpers import fixture, fixture_names

SOURCE = "lhc"
RULE = LhcRule()


def deliver(name_or_body: str | dict[str, Any], settings, rule: LhcRule = RULE):  # type: ignore[no-untyped-def]
    body = fixture(name_or_body, SOURCE) if isinstance(name_or_body, str) else name_or_body
    return adapter.to_delivery(body, settings, rule)


@pytest.mark.parametrize("name", fixture_names(SOURCE))
def test_every_fixture_is_accepted(name, settings):
    deliver(name, settings)


@pytest.mark.parametrize("name, expected", [
    ("chat_chat_started", [(Kind.CHAT_STARTED, None), (Kind.MESSAGE, Role.CUSTOMER)]),
    ("chat_addmsguser", [(Kind.MESSAGE, Role.CUSTOMER)]),
    ("chat_addmsguser_webhook", [(Kind.MESSAGE, Role.CUSTOMER)]),
    ("chat_addmsguser.legacy", [(Kind.MESSAGE, Role.CUSTOMER)]),
    ("chat_web_add_msg_admin", [(Kind.MESSAGE, Role.AGENT)]),
    ("chat_web_add_msg_admin.whisper", [(Kind.MESSAGE, Role.INTERNAL)]),
    ("chat_web_add_msg_admin.bot", [(Kind.MESSAGE, Role.BOT)]),
    ("chat_web_add_msg_admin.system", [(Kind.MESSAGE, Role.SYSTEM)]),
    ("chat_close", [(Kind.CHAT_ENDED, None)]),
    ("chat_explicitly_closed", [(Kind.CUSTOMER_LEFT, None)]),
    ("chat_visitor_regular_closed", [(Kind.CUSTOMER_LEFT, None)]),
    ("chat_modified", [(Kind.FORM_FILLED, None)]),
    ("survey_filled", [(Kind.RATED, Role.SYSTEM)]),
    ("survey_filled.good", [(Kind.RATED, Role.SYSTEM)]),
])
def test_events_normalise(name, expected, settings):
    delivery = deliver(name, settings)
    assert [(e.kind, e.author_role) for e in delivery.events] == expected
    assert {(e.source, e.chat_id, e.thread_id) for e in delivery.events} == {(SOURCE, "5388", "5388")}


@pytest.mark.parametrize("event", ["chat.accept", "chat.subject_add", "mail.conversation"])
def test_other_events_are_ignored(event, settings):
    body = fixture("chat_accept", SOURCE)
    body["event"] = body["trigger_event"] = event
    assert deliver(body, settings) is None


def test_the_event_falls_back_to_the_trigger_argument_before_4_79(settings):
    body = fixture("chat_addmsguser", SOURCE)
    body["event"] = None
    assert deliver(body, settings).action == "chat.addmsguser"
    body["trigger_event"] = None
    with pytest.raises(InvalidPayload) as info:
        deliver(body, settings)
    assert "event" in info.value.errors


def test_ids_and_times_as_strings_are_the_same_event(settings):
    legacy = fixture("chat_addmsguser.legacy", SOURCE)
    numbers = copy.deepcopy(legacy)
    numbers["chat"] = {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in numbers["chat"].items()}
    numbers["msg"] = {**numbers["msg"], "id": 120050, "user_id": 0, "time": 1766400090}
    assert deliver(legacy, settings).events == deliver(numbers, settings).events
    assert deliver(legacy, settings).id == deliver(numbers, settings).id


def test_bbcode_is_stripped_and_times_are_the_messages_own(settings):
    (started, first) = deliver("chat_chat_started", settings).events
    assert first.text == "Hi, I want a refund for order #1042"
    assert (first.time, started.time) == ("2025-12-22T10:31:41Z", "2025-12-22T10:31:40Z")
    (message,) = deliver("chat_addmsguser", settings).events
    assert message.text == "Où est ma commande? my order"


@pytest.mark.parametrize("text, plain", [
    ("[b]bold[/b] and [i]it[/i]", "bold and it"),
    ("see [url=https://x.example/a]the page[/url]", "see the page"),
    ("a file [file=12_abc] here", "a file here"),
    ("pic [img]https://x.example/a.png[/img] done", "pic done"),
    ("[quote=5]earlier[/quote] reply", "earlier reply"),
    ("no [tags] that are not BBCode?", "no [tags] that are not BBCode?"),
])
def test_strip_bbcode(text, plain):
    assert adapter.strip_bbcode(text) == plain


def test_the_customer_comes_from_the_chat(settings):
    started, _ = deliver("chat_chat_started", settings).events
    assert (started.customer_email, started.customer_name) == ("marie@example.org", "Marie Curie")
    (modified,) = deliver("chat_modified", settings).events
    assert modified.customer_email == "marie.curie@example.org"
    (closed,) = deliver("chat_close", settings).events
    assert (closed.customer_email, closed.time) == ("marie@example.org", "2025-12-22T10:50:00Z")


def test_an_operator_is_the_author_a_customer_or_bot_is_not_named(settings):
    assert deliver("chat_web_add_msg_admin", settings).events[0].author_id == "7"
    assert deliver("chat_addmsguser", settings).events[0].author_id is None
    assert deliver("chat_web_add_msg_admin.bot", settings).events[0].author_id is None


def test_a_modified_chat_without_email_is_ignored(settings):
    body = fixture("chat_modified", SOURCE)
    body["chat"]["email"] = ""
    assert deliver(body, settings) is None


@pytest.mark.parametrize("given, scale, good_at, rating", [(2, 5, 0.6, 0), (3, 5, 0.6, 1), (4, 5, 0.6, 1),
                                                            (5, 10, 0.6, 0), (8, 10, 0.8, 1), (7, 10, 0.8, 0)])
def test_the_rating_is_good_from_good_at_of_the_scale(given, scale, good_at, rating, settings):
    body = fixture("survey_filled", SOURCE)
    body["survey"]["max_stars_1"], body["survey_item"]["max_stars_1"] = scale, given
    (rated,) = deliver(body, settings, LhcRule(good_at=good_at)).events
    assert rated.rating == rating


def test_the_rating_question_is_the_rules(settings):
    body = fixture("survey_filled", SOURCE)
    body["survey"]["max_stars_2"], body["survey_item"]["max_stars_2"] = 5, 5
    assert deliver(body, settings, LhcRule(rating_question=2)).events[0].rating == 1
    assert deliver(body, settings).events[0].rating == 0  # question 1: 2 of 5


def test_an_unanswered_rating_question_is_no_rating(settings):
    body = fixture("survey_filled", SOURCE)
    body["survey_item"]["max_stars_1"] = 0
    assert deliver(body, settings) is None


# --- dedupe ----------------------------------------------------------------------------------


def test_webhook_id_and_sent_at_never_make_two_deliveries(settings):
    for name in fixture_names(SOURCE):
        body = fixture(name, SOURCE)
        again = {**copy.deepcopy(body), "webhook_id": 99, "sent_at": body["sent_at"] + 60}
        first = deliver(body, settings)
        if first is not None:
            assert deliver(again, settings).id == first.id, name


def test_a_message_delivered_by_two_events_is_one_delivery(settings):
    body = fixture("chat_addmsguser", SOURCE)
    other = {**copy.deepcopy(body), "event": "chat.addmsguser_webhook"}
    assert deliver(body, settings).id == deliver(other, settings).id


@pytest.mark.parametrize("name, change", [
    ("chat_addmsguser", lambda b: b["msg"].__setitem__("id", 1)),
    ("chat_close", lambda b: b["chat"].__setitem__("cls_time", 1766400900)),
    ("chat_explicitly_closed", lambda b: b.__setitem__("event", "chat.visitor_regular_closed")),
    ("chat_modified", lambda b: b["chat"].__setitem__("email", "other@example.org")),
    ("survey_filled", lambda b: b["survey_item"].__setitem__("max_stars_1", 5)),
    ("survey_filled", lambda b: b["survey_item"].__setitem__("id", 79)),
    ("chat_chat_started", lambda b: b["chat"].__setitem__("id", 5389)),
])
def test_what_identifies_a_delivery_tells_two_apart(name, change, settings):
    body = fixture(name, SOURCE)
    other = copy.deepcopy(body)
    change(other)
    assert deliver(body, settings).id != deliver(other, settings).id


def test_extra_fields_are_kept_as_attributes_and_chat_fields_without_contact_details(settings):
    body = fixture("chat_addmsguser", SOURCE)
    body["department"] = "Sales"
    (message,) = deliver(body, settings).events
    assert message.raw["attributes"] == {"department": "Sales"}
    chat = message.raw["chat"]
    assert chat["dep_id"] == 2 and "email" not in chat and "nick" not in chat


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.pop("chat"), "chat"),
    (lambda b: b["chat"].__setitem__("id", None), "chat"),
    (lambda b: b["chat"].__setitem__("id", "abc"), "chat"),
    (lambda b: b["chat"].__setitem__("id", 0), "chat"),
    (lambda b: b["msg"].__setitem__("user_id", "x"), "msg"),
    (lambda b: b["msg"].__setitem__("time", -5), "msg"),
    (lambda b: b.__setitem__("event", 5), "event"),
    (lambda b: b.__setitem__("survey_item", "stars"), "survey_item"),
])
def test_malformed_calls_name_the_field(mutate, field, settings):
    body = fixture("chat_addmsguser", SOURCE)
    mutate(body)
    with pytest.raises(InvalidPayload) as info:
        deliver(body, settings)
    assert field in info.value.errors


@pytest.mark.parametrize("name", [n for n in fixture_names(SOURCE) if not n.startswith("chat_accept")])
def test_a_template_without_the_event_field_falls_back_to_the_trigger_argument(name, settings):
    body = fixture(name, SOURCE)
    event = body.pop("event") or body["trigger_event"]
    body["trigger_event"] = event
    assert deliver(body, settings).action == event


@pytest.mark.parametrize("text, plain", [
    ("[url=" * 20_000, "[url=" * 20_000), ("[img=" * 20_000, "[img=" * 20_000), ("[img]" * 20_000, ""),
    ("[img]x" * 20_000 + "[/img]", ""), ("[b" * 50_000, "[b" * 50_000), ("unclosed [img] stays", "unclosed stays"),
])
def test_stripping_hostile_text_takes_one_pass(text, plain):
    # Tag attributes stop at the next bracket: what took seconds of backtracking is now linear.
    assert adapter.strip_bbcode(text) == plain
