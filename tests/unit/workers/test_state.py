"""ChatState: small, expiring facts about chats (roles, ended threads, tags, bot routing status)."""

from __future__ import annotations

import pytest

from chathooks.events import Role, User
from workers.state import ROUTING_TTL, ChatState

CHAT_TTL, ENDED_TTL = 7 * 24 * 3600, 24 * 3600
BOT = "bot-1"
USERS = (
    User(id="cust-1", type="customer", name="Jane Roe", email="jane@example.org"),
    User(id="agent-1", type="agent", name="Agent Smith"),
    User(id=BOT, type="agent", name="Helper Bot"),
)


@pytest.fixture
def state(settings, fake_redis) -> ChatState:
    return ChatState(fake_redis, settings.key_prefix, CHAT_TTL, ENDED_TTL)


def ttl(fake_redis, settings, suffix: str) -> int:
    return fake_redis.ttl(f"{settings.key_prefix}{suffix}")


def test_remembers_customers_agents_and_recognises_the_bot_by_id(state):
    state.remember_users("C", USERS, frozenset({BOT}))
    assert state.role("C", "cust-1") is Role.CUSTOMER
    assert state.role("C", "agent-1") is Role.AGENT
    assert state.role("C", BOT) is Role.BOT


def test_unknown_users_and_chats_have_no_role(state):
    state.remember_users("C", USERS, frozenset())
    assert state.role("C", "stranger") is None
    assert state.role("other-chat", "cust-1") is None


def test_users_of_other_types_are_not_remembered(state, fake_redis):
    state.remember_users("C", (User(id="x", type="supervisor"),), frozenset())
    assert state.role("C", "x") is None
    assert fake_redis.keys("*") == []


def test_roles_expire_with_the_chat(state, fake_redis, settings):
    state.remember_users("C", USERS, frozenset())
    assert CHAT_TTL - 5 < ttl(fake_redis, settings, "roles:C") <= CHAT_TTL


def test_customer_names_are_remembered_per_chat(state):
    state.remember_users("C", USERS, frozenset())
    customer = next(u for u in USERS if u.type == "customer")
    assert state.customer_name("C", customer.id) == customer.name
    assert state.customer_name("other", customer.id) is None


def test_ending_a_thread_marks_it_and_shortens_what_is_kept(state, fake_redis, settings):
    state.remember_users("C", USERS, frozenset())
    state.add_tags("T", "matched", ["refund"])
    state.add_tags("T", "applied", ["vip"])
    assert not state.has_ended("T")
    state.end_thread("C", "T")
    assert state.has_ended("T")
    for suffix in ("thread:T:ended", "thread:T:matched", "thread:T:applied", "roles:C"):
        assert 0 < ttl(fake_redis, settings, suffix) <= ENDED_TTL, suffix
    assert state.tags("T", "matched") == {"refund"}  # still there for late deliveries


def test_tags_added_after_the_end_get_the_short_ttl(state, fake_redis, settings):
    state.end_thread("C", "T")
    state.add_tags("T", "matched", ["refund"])
    assert 0 < ttl(fake_redis, settings, "thread:T:matched") <= ENDED_TTL


def test_tags_of_a_live_thread_get_the_chat_ttl(state, fake_redis, settings):
    state.add_tags("T", "matched", ["refund"])
    assert ENDED_TTL < ttl(fake_redis, settings, "thread:T:matched") <= CHAT_TTL


def test_tag_sets_are_per_thread_and_part(state):
    state.add_tags("T", "matched", ["refund", "order-status"])
    state.add_tags("T", "matched", ["refund"])
    state.add_tags("T", "applied", ["vip"])
    state.add_tags("T2", "matched", ["other"])
    assert state.tags("T", "matched") == {"refund", "order-status"}
    assert state.tags("T", "applied") == {"vip"}
    assert state.tags("T2", "matched") == {"other"}
    assert state.tags("T3", "matched") == set()


def test_no_tags_writes_nothing(state, fake_redis):
    state.add_tags("T", "matched", [])
    state.add_tags("T", "matched", frozenset())
    assert fake_redis.keys("*") == []


def test_remove_tag(state):
    state.add_tags("T", "applied", ["refund", "vip"])
    state.remove_tag("T", "applied", "refund")
    state.remove_tag("T", "applied", "never-there")
    assert state.tags("T", "applied") == {"vip"}


def test_routing_status_is_remembered_for_a_while(state, fake_redis, settings):
    assert state.routing_status(BOT) is None
    state.set_routing_status(BOT, "accepting_chats")
    assert state.routing_status(BOT) == "accepting_chats"
    state.set_routing_status(BOT, "not_accepting_chats")
    assert state.routing_status(BOT) == "not_accepting_chats"
    assert 0 < ttl(fake_redis, settings, f"routing:{BOT}") <= ROUTING_TTL


def test_every_key_is_under_the_prefix_and_expires(state, fake_redis, settings):
    state.remember_users("C", USERS, frozenset({BOT}))
    state.add_tags("T", "matched", ["refund"])
    state.add_tags("T", "applied", ["vip"])
    state.set_routing_status(BOT, "accepting_chats")
    state.end_thread("C", "T")
    keys = fake_redis.keys("*")
    assert keys and all(k.decode().startswith(settings.key_prefix) for k in keys)
    assert all(fake_redis.ttl(k) > 0 for k in keys)


def test_adding_tags_tells_whether_the_thread_has_ended(state):
    assert state.add_tags("T", "matched", ["refund"]) is False
    state.end_thread("C", "T")
    assert state.add_tags("T", "matched", ["order"]) is True
    assert state.add_tags("T", "matched", []) is False  # nothing added, nothing asked


def test_tag_sets_are_read_together(state):
    state.add_tags("T", "matched", ["refund", "order"])
    state.add_tags("T", "applied", ["refund"])
    assert state.tag_sets("T", "matched", "applied") == [{"refund", "order"}, {"refund"}]
