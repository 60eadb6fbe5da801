"""Profiles from the events of every source: chats counted once, ratings, tags, list upserts."""

from __future__ import annotations

from chathooks.events import Event, Kind
from chathooks.platforms.livechat_v2.adapter import to_delivery as v2_delivery
from tests.helpers import fixture
from tests.unit.workers.conftest import CUSTOMER_ID, deliver, seed
from workers.dispatch import dispatch


def test_a_livechat_chat_makes_its_customer_known_with_rating_and_tags(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat", "incoming_event", "thread_properties_updated", "thread_tagged",
            "chat_deactivated")
    profile = live_rt.profiles.find("jane@example.org", None)
    assert (profile.known, profile.chats, profile.last_rating, profile.name) == (True, 1, "bad", "Jane Roe")
    assert {"refund", "order-status", "bad-rating"} <= set(profile.tags)  # matched, the bad tag, thread_tagged's
    assert profile.subscribed
    assert live_rt.profiles.find(None, CUSTOMER_ID) == profile


def test_every_delivery_twice_counts_the_chat_once(dry_rt):
    for _ in range(2):
        deliver(dry_rt, "incoming_chat", "incoming_event.filled_form", "chat_deactivated")
    assert dry_rt.profiles.find("jane@example.org", None).chats == 1


def test_an_email_given_later_links_the_chat_to_it(dry_rt):
    deliver(dry_rt, "incoming_chat", "incoming_event.filled_form")  # the form gives jane.roe@example.org
    later = dry_rt.profiles.find("jane.roe@example.org", None)
    assert (later.known, later.chats) == (True, 1)
    assert dry_rt.profiles.find(None, CUSTOMER_ID) == later


def test_a_v2_chat_counts_too(dry_rt):
    for name in ("chat_started", "chat_ended"):
        body = fixture(name, "livechat_v2")
        body.pop("token")
        dispatch(v2_delivery(body, dry_rt.settings).events, dry_rt)
    profile = dry_rt.profiles.find("jane@example.org", None)
    assert (profile.known, profile.chats, profile.first_seen, profile.last_seen) == (
        True, 1, 1756720800.0, 1756721400.0)


def test_a_lead_alone_is_subscribed_but_not_known(dry_rt):
    lead = Event(key="chatbot:m1", source="chatbot", kind=Kind.LEAD, customer_email="New@Example.org",
                 customer_name="New Person")
    dispatch([lead], dry_rt)
    dry_rt.journal.flush()  # the task's writes
    profile = dry_rt.profiles.find("new@example.org", None)
    assert (profile.known, profile.chats, profile.subscribed) == (False, 0, True)
