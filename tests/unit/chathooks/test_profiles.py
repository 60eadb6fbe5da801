"""Customer profiles: keyed by email and customer id, linked, counted once per chat, read for ChatBot."""

from __future__ import annotations

import pytest

from chathooks.keys import Keys
from chathooks.profiles import UNKNOWN, Profile, Profiles
from chathooks.redis_client import execute

T0 = 1_756_720_800.0  # 2025-09-01T10:00:00Z


@pytest.fixture
def profiles(fake_redis, settings) -> Profiles:  # type: ignore[no-untyped-def]
    return Profiles(fake_redis, Keys(settings.key_prefix), ttl=3600, chat_ttl=600)


def test_nobody_is_unknown(profiles):
    assert profiles.find("jane@example.org", "c-1") == UNKNOWN == Profile()
    assert profiles.find(None, None) == UNKNOWN


def test_a_chat_makes_a_known_customer_found_by_email_in_any_case(profiles):
    profiles.seen("livechat", "C1", email="Jane@Example.org", customer_id="c-1", name="Jane Roe", at=T0)
    found = profiles.find("jane@EXAMPLE.org", None)
    assert found == Profile(known=True, chats=1, first_seen=T0, last_seen=T0, name="Jane Roe")
    assert profiles.find(None, "c-1") == found  # by the platform's customer id too


def test_a_redelivered_chat_counts_once_and_reordered_times_keep_first_and_last(profiles):
    profiles.seen("livechat", "C1", email="jane@example.org", at=T0 + 60)
    profiles.seen("livechat", "C1", email="jane@example.org", at=T0 + 60)
    profiles.seen("livechat", "C2", email="jane@example.org", at=T0 + 600)
    profiles.seen("livechat", "C1", email="jane@example.org", at=T0)  # an earlier event, late
    found = profiles.find("jane@example.org", None)
    assert (found.chats, found.first_seen, found.last_seen) == (2, T0, T0 + 600)


def test_chats_on_different_platforms_are_different_chats(profiles):
    profiles.seen("livechat", "42", email="jane@example.org", at=T0)
    profiles.seen("lhc", "42", email="jane@example.org", at=T0)
    assert profiles.find("jane@example.org", None).chats == 2


def test_a_customer_id_profile_is_merged_into_the_email_one_when_both_are_seen(profiles):
    profiles.seen("livechat", "C1", customer_id="c-1", name="Jane", at=T0)
    profiles.rated("livechat", "C1", "bad", T0 + 30)
    profiles.tagged("livechat", "C1", ["refund"])
    profiles.seen("livechat", "C2", email="jane@example.org", at=T0 + 600)
    profiles.subscribed("jane@example.org")
    profiles.seen("livechat", "C3", email="jane@example.org", customer_id="c-1", at=T0 + 900)  # linked now
    merged = Profile(known=True, chats=3, first_seen=T0, last_seen=T0 + 900, last_rating="bad", tags=("refund",),
                     subscribed=True, name="Jane")
    assert profiles.find("jane@example.org", None) == merged
    assert profiles.find(None, "c-1") == merged  # the id is an alias of the email now
    profiles.seen("livechat", "C4", customer_id="c-1", at=T0 + 1200)  # later, by id alone: the email's profile
    assert profiles.find("jane@example.org", None).chats == 4


def test_a_chat_linked_by_customer_id_writes_into_the_email_profile_once_the_id_is_an_alias(profiles):
    profiles.seen("livechat", "C1", customer_id="c-1", at=T0)
    profiles.seen("livechat", "C2", email="jane@example.org", customer_id="c-1", at=T0 + 60)  # linked now
    profiles.tagged("livechat", "C1", ["late"])
    profiles.rated("livechat", "C1", "good", T0 + 90)
    profiles.seen("livechat", "C1", at=T0 + 300)  # C1's end: no customer in the event
    found = profiles.find("jane@example.org", None)
    assert (found.tags, found.last_rating, found.last_seen, found.chats) == (("late",), "good", T0 + 300, 2)


def test_linking_twice_changes_nothing(profiles):
    for _ in range(2):
        profiles.seen("livechat", "C1", email="jane@example.org", customer_id="c-1", at=T0)
    assert profiles.find("jane@example.org", "c-1").chats == 1


def test_the_latest_rating_wins_whatever_the_order(profiles):
    profiles.seen("livechat", "C1", email="jane@example.org", at=T0)
    profiles.rated("livechat", "C1", "good", T0 + 120)
    profiles.rated("livechat", "C1", "bad", T0 + 60)  # older, delivered late
    assert profiles.find("jane@example.org", None).last_rating == "good"


def test_ratings_and_tags_of_a_chat_without_a_known_customer_are_dropped(profiles, fake_redis):
    profiles.rated("livechat", "C9", "good", T0)
    profiles.tagged("livechat", "C9", ["refund"])
    assert fake_redis.keys("*") == []


def test_an_event_without_identity_moves_last_seen_of_the_chats_customer(profiles):
    profiles.seen("livechat", "C1", email="jane@example.org", at=T0)
    profiles.seen("livechat", "C1", at=T0 + 300)  # the chat's end: no customer in the event
    found = profiles.find("jane@example.org", None)
    assert (found.chats, found.last_seen) == (1, T0 + 300)


def test_a_list_upsert_alone_does_not_make_a_customer_known(profiles):
    profiles.subscribed("new@example.org")
    assert profiles.find("new@example.org", None) == Profile(subscribed=True)


def test_every_key_expires(profiles, fake_redis):
    profiles.seen("livechat", "C1", email="jane@example.org", customer_id="c-1", at=T0)
    profiles.rated("livechat", "C1", "good", T0)
    profiles.tagged("livechat", "C1", ["refund"])
    profiles.subscribed("jane@example.org")
    assert all(0 < fake_redis.ttl(k) <= 3600 for k in fake_redis.keys("*"))
    assert 0 < fake_redis.ttl(Keys(profiles._keys.prefix).profile_chat("livechat", "C1")) <= 600


def test_no_message_text_is_kept(profiles, fake_redis):
    profiles.seen("livechat", "C1", email="jane@example.org", name="Jane", at=T0)
    stored = {k: v for key in fake_redis.keys("*") if fake_redis.type(key) == b"hash"
              for k, v in fake_redis.hgetall(key).items()}
    assert {k.decode() for k in stored} <= {"chats", "first_seen", "last_seen", "name", "chat:livechat:C1"}


def test_as_text_renders_every_field():
    profile = Profile(known=True, chats=3, first_seen=T0, last_seen=T0 + 60, last_rating="good", tags=("a", "b"),
                      subscribed=False, name="Jane")
    assert profile.as_text() == {"known": "true", "chats": "3", "first_seen": "2025-09-01T10:00:00Z",
                                 "last_seen": "2025-09-01T10:01:00Z", "last_rating": "good", "tags": "a, b",
                                 "subscribed": "false", "name": "Jane"}
    assert UNKNOWN.as_text()["first_seen"] == "" and UNKNOWN.as_text()["known"] == "false"


def test_an_email_and_a_customer_id_not_linked_yet_are_read_as_one_customer(profiles):
    profiles.seen("livechat", "C1", customer_id="cust-1", name="Jane", at=T0)
    profiles.seen("livechat", "C2", customer_id="cust-1", at=T0 + 60)
    profiles.rated("livechat", "C2", "bad", T0 + 90)
    profiles.subscribed("jane@example.org")  # a ChatBot lead's list sync: the email alone
    both = profiles.find("jane@example.org", "cust-1")
    assert both == Profile(known=True, chats=2, first_seen=T0, last_seen=T0 + 60, last_rating="bad", subscribed=True,
                           name="Jane")
    assert profiles.find("jane@example.org", None) == Profile(subscribed=True)


def test_a_customer_id_linked_between_the_look_up_and_the_write_counts_into_the_email(profiles, monkeypatch):
    profiles.seen("livechat", "C1", customer_id="c-1", at=T0)
    real = profiles._redis.hget

    def linked_meanwhile(key, field):  # type: ignore[no-untyped-def]
        value = real(key, field)
        if field == "alias" and value is None:  # another worker links the id right after this look-up
            profiles.seen("livechat", "C2", email="jane@example.org", customer_id="c-1", at=T0 + 60)
        return value

    monkeypatch.setattr(profiles._redis, "hget", linked_meanwhile)
    profiles.seen("livechat", "C3", customer_id="c-1", at=T0 + 120)
    monkeypatch.undo()
    assert profiles.find("jane@example.org", None).chats == 3


def test_with_a_caller_to_write_it_subscribed_goes_with_its_writes_and_a_tag_at_once(fake_redis, settings):
    writes: list = []  # type: ignore[type-arg]
    profiles = Profiles(fake_redis, Keys(settings.key_prefix), ttl=3600, chat_ttl=600, later=writes.append)
    profiles.seen("livechat", "C1", email="jane@example.org", at=T0)
    profiles.tagged("livechat", "C1", ["vip"])  # looked up and written in one script, at once
    profiles.subscribed("Jane@Example.org")
    found = profiles.find("jane@example.org", None)
    assert (found.tags, found.subscribed, len(writes)) == (("vip",), False, 1)
    with fake_redis.pipeline(transaction=False) as pipe:
        writes[0](pipe)
        pipe.execute()
    assert profiles.find("jane@example.org", None).subscribed
    assert 3500 < fake_redis.ttl(Keys(settings.key_prefix).profile_email("jane@example.org")) <= 3600


def test_with_a_caller_to_keep_it_a_tag_goes_with_its_writes_looked_up_when_they_are_written(fake_redis, settings):
    kept: list = []  # type: ignore[type-arg]
    profiles = Profiles(fake_redis, Keys(settings.key_prefix), ttl=3600, chat_ttl=600,
                        lasting=kept.append)
    profiles.seen("livechat", "C1", customer_id="c-1", at=T0)
    profiles.tagged("livechat", "C1", ["vip"])
    assert profiles.find(None, "c-1").tags == () and len(kept) == 1
    profiles.seen("livechat", "C2", email="jane@example.org", customer_id="c-1", at=T0 + 60)  # merged meanwhile
    with fake_redis.pipeline(transaction=False) as pipe:
        kept[0](pipe)
        execute(pipe)  # the task's flush: its scripts loaded where the server lacks them
    assert profiles.find("jane@example.org", None).tags == ("vip",) == profiles.find(None, "c-1").tags


def test_a_chat_link_in_no_known_form_is_no_profile(profiles, fake_redis):
    fake_redis.set(Keys(profiles._keys.prefix).profile_chat("livechat", "C7"), "junk")
    profiles.tagged("livechat", "C7", ["refund"])
    profiles.rated("livechat", "C7", "good", T0)
    profiles.seen("livechat", "C7", at=T0)
    assert sorted(fake_redis.keys("*")) == [Keys(profiles._keys.prefix).profile_chat("livechat", "C7").encode()]
