"""Auto-tagging: rules matched per message, tags applied once when the thread ends, reconciled with get_chat."""

from __future__ import annotations

import pytest

from chathooks.events import Event, Kind, Role
from chathooks.http import OutboundError
from chathooks.platforms.base import ChatRef
from chathooks.rules import load_rules
from tests.helpers import FIXTURES
from tests.unit.workers.conftest import (
    AGENT_ID, CHAT_ID, CUSTOMER_ID, THREAD_ID, chat_event, deliver, events, records, retry_payloads, seed, tag_calls,
)
from workers.dispatch import dispatch
from workers.handlers import tagging
from workers.once import Busy
from workers.runtime import Runtime


def message(author_id: str | None, role: Role | None, text: str, n: int = 50) -> Event:
    return Event(key=f"livechat:{CHAT_ID}:event:{n}", source="livechat", kind=Kind.MESSAGE, chat_id=CHAT_ID,
                 thread_id=THREAD_ID, author_id=author_id, author_role=role, text=text,
                 time="2025-09-01T10:06:00.000000Z")


def tags_sent(rt) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(r["tag"] for r in records(rt, "tag_thread"))


def matched(rt) -> set[str]:  # type: ignore[no-untyped-def]
    return rt.state.tags(THREAD_ID, "matched")


# --- matching ------------------------------------------------------------------------------


def test_the_seed_flow_tags_the_thread_when_it_ends(dry_rt):
    deliver(dry_rt, "incoming_chat", "user_added_to_chat", "incoming_event.bot_message", "incoming_event",
            "incoming_event.agent_message")
    assert records(dry_rt, "tag_thread") == []  # nothing before the end
    deliver(dry_rt, "chat_deactivated")
    assert tags_sent(dry_rt) == ["canned-apology", "order-status", "refund"]


def test_customer_messages_match_rules_for_customers_and_anyone(dry_rt):
    deliver(dry_rt, "incoming_chat")  # "Hi, I want a refund for order #1042"
    assert matched(dry_rt) == {"refund", "order-status"}


def test_agent_messages_match_rules_for_agents_and_anyone(dry_rt):
    deliver(dry_rt, "user_added_to_chat", "incoming_event.agent_message")
    assert matched(dry_rt) == {"canned-apology"}
    tagging.match(message(AGENT_ID, Role.AGENT, "I have issued the refund", n=51), dry_rt)
    assert matched(dry_rt) == {"canned-apology", "refund"}


def test_an_agent_only_rule_ignores_the_customer_saying_it(dry_rt):
    tagging.match(message(CUSTOMER_ID, Role.CUSTOMER, "We apologise for the inconvenience"), dry_rt)
    assert matched(dry_rt) == set()


def test_a_customer_only_rule_ignores_the_agent_saying_it(dry_settings, fake_redis):
    rt = Runtime.build(dry_settings, fake_redis, rules=load_rules(str(FIXTURES / "rules" / "minimal.json")))
    tagging.match(message(AGENT_ID, Role.AGENT, "about order #1042"), rt)
    assert matched(rt) == set()
    tagging.match(message(CUSTOMER_ID, Role.CUSTOMER, "about order #1042"), rt)
    assert matched(rt) == {"order-status"}


def test_the_authors_role_comes_from_what_the_chat_told_us(dry_rt):
    # incoming_event carries no role: it is the role remembered from incoming_chat / user_added_to_chat.
    (event,) = events("incoming_event", dry_rt.settings)
    assert event.author_role is None
    deliver(dry_rt, "incoming_event")
    assert matched(dry_rt) == set()  # dry-run without credentials: unknown author, no match
    deliver(dry_rt, "incoming_chat", "incoming_event")
    assert "refund" in matched(dry_rt)


def test_the_authors_role_is_fetched_with_get_chat_when_unknown(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_event.agent_message")
    assert matched(live_rt) == {"canned-apology"}
    assert len(livechat.calls("get_chat")) == 1


def test_a_text_no_rule_matches_never_asks_who_wrote_it(live_rt, livechat):
    seed(livechat)
    tagging.match(message("someone-new", None, "Thanks, that is all for today."), live_rt)
    assert livechat.calls("get_chat") == []
    tagging.match(message("someone-new", None, "we apologise for the inconvenience"), live_rt)
    assert len(livechat.calls("get_chat")) == 1  # a rule matches: now who wrote it matters


@pytest.mark.parametrize("role", [Role.BOT, Role.SYSTEM])
def test_bot_and_system_messages_never_match(dry_rt, role):
    tagging.match(message("someone", role, "refund for order #1042; we apologise for the inconvenience"), dry_rt)
    assert matched(dry_rt) == set()


def test_the_bots_message_never_matches_even_as_a_chat_member_of_type_agent(dry_rt):
    deliver(dry_rt, "incoming_chat")
    dry_rt.state.remove_tag(THREAD_ID, "matched", "order-status")
    deliver(dry_rt, "incoming_event.bot_message")  # "... passing order #1042 ..." by the bot (type agent)
    assert "order-status" not in matched(dry_rt)
    deliver(dry_rt, "chat_deactivated")
    assert "order-status" not in tags_sent(dry_rt)


def test_the_bots_message_in_the_thread_history_never_matches(live_rt, livechat):
    seed(livechat, chat_event("incoming_event.bot_message"), history=False)
    deliver(live_rt, "chat_deactivated")
    assert tag_calls(livechat) == []


def test_unknown_authors_and_empty_texts_match_nothing(dry_rt):
    tagging.match(message(None, None, "refund"), dry_rt)
    tagging.match(message(CUSTOMER_ID, Role.CUSTOMER, ""), dry_rt)
    assert matched(dry_rt) == set()


# --- applying ------------------------------------------------------------------------------


def test_each_tag_is_applied_once_even_if_the_end_is_delivered_twice(live_rt, livechat):
    seed(livechat, chat_event("incoming_event"), chat_event("incoming_event.agent_message"))
    deliver(live_rt, "incoming_chat", "user_added_to_chat", "incoming_event", "incoming_event.agent_message")
    deliver(live_rt, "chat_deactivated", "chat_deactivated")
    assert sorted(tag_calls(livechat)) == ["canned-apology", "order-status", "refund"]
    assert sorted(livechat.chat(CHAT_ID)["thread"]["tags"]) == ["canned-apology", "order-status", "refund"]


def test_a_redelivered_end_applies_nothing_again_even_when_state_was_lost(dry_rt, fake_redis):
    deliver(dry_rt, "incoming_chat", "chat_deactivated")
    fake_redis.delete(f"{dry_rt.settings.key_prefix}thread:{THREAD_ID}:applied")
    deliver(dry_rt, "chat_deactivated")
    assert tags_sent(dry_rt) == ["order-status", "refund"]


@pytest.mark.parametrize("ended", ["chat_deactivated", "chat_deactivated.router", "chat_deactivated.v3.5"])
def test_every_spelling_of_the_end_applies_the_tags(dry_rt, ended):
    deliver(dry_rt, "incoming_chat", ended)
    assert tags_sent(dry_rt) == ["order-status", "refund"]


def test_reconcile_catches_a_message_whose_incoming_event_was_never_delivered(live_rt, livechat):
    seed(livechat, chat_event("incoming_event.agent_message"))  # LiveChat has it; we never heard of it
    deliver(live_rt, "incoming_chat", "chat_deactivated")
    assert "canned-apology" in tag_calls(livechat)


def test_reconcile_catches_everything_when_no_message_was_delivered_at_all(live_rt, livechat):
    seed(livechat, chat_event("incoming_event.agent_message"))
    deliver(live_rt, "chat_deactivated")
    assert sorted(tag_calls(livechat)) == ["canned-apology", "order-status", "refund"]


def test_tags_already_on_the_thread_via_thread_tagged_are_not_sent_again(dry_rt):
    deliver(dry_rt, "incoming_chat", "thread_tagged", "chat_deactivated")  # an agent tagged "refund" by hand
    assert tags_sent(dry_rt) == ["order-status"]


def test_tags_already_on_the_thread_in_get_chat_are_not_sent_again(live_rt, livechat):
    seed(livechat, tags=["refund"])
    deliver(live_rt, "incoming_chat", "chat_deactivated")
    assert tag_calls(livechat) == ["order-status"]


def test_thread_tagged_then_untagged_tags_it_again_at_the_end(dry_rt):
    deliver(dry_rt, "incoming_chat", "thread_tagged", "thread_untagged", "chat_deactivated")
    assert tags_sent(dry_rt) == ["order-status", "refund"]


def test_a_message_arriving_after_the_end_is_tagged_then(dry_rt):
    deliver(dry_rt, "incoming_chat", "user_added_to_chat", "chat_deactivated")
    assert tags_sent(dry_rt) == ["order-status", "refund"]
    deliver(dry_rt, "incoming_event.agent_message")
    assert tags_sent(dry_rt) == ["canned-apology", "order-status", "refund"]


def test_a_message_arriving_after_the_end_is_tagged_then_live(live_rt, livechat):
    seed(livechat)  # get_chat at the end does not show the late message yet
    deliver(live_rt, "incoming_chat", "user_added_to_chat", "chat_deactivated")
    assert sorted(tag_calls(livechat)) == ["order-status", "refund"]
    deliver(live_rt, "incoming_event.agent_message", "incoming_event.agent_message")
    assert sorted(tag_calls(livechat)) == ["canned-apology", "order-status", "refund"]


def test_a_late_message_with_an_already_applied_tag_sends_nothing(dry_rt):
    deliver(dry_rt, "incoming_chat", "chat_deactivated", "incoming_event")  # "refund" again, late
    assert tags_sent(dry_rt) == ["order-status", "refund"]


def test_a_tag_claimed_by_another_worker_is_retried_not_lost(dry_rt, fake_redis):
    deliver(dry_rt, "incoming_chat")
    fake_redis.set(dry_rt.once.key(f"tag:{THREAD_ID}:order-status"), "other-worker", ex=60)
    (ended,) = events("chat_deactivated", dry_rt.settings)
    with pytest.raises(Busy):
        tagging.thread_ended(ended, dry_rt)
    dispatch([ended], dry_rt)
    assert len(dry_rt.dead_letters) == 0
    assert [p["handler"] for p, _ in retry_payloads(dry_rt)] == ["tagging.thread_ended"]


def test_a_tag_that_landed_before_its_answer_was_lost_is_not_sent_again(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("tag_thread", close=True, process=True)
    with pytest.raises(OutboundError):
        tagging.tag_once(live_rt, ChatRef("livechat", CHAT_ID, THREAD_ID), "refund")
    tagging.tag_once(live_rt, ChatRef("livechat", CHAT_ID, THREAD_ID), "refund")
    assert tag_calls(livechat) == ["refund"]
    assert livechat.chat(CHAT_ID)["thread"]["tags"] == ["refund"]
    assert live_rt.state.tags(THREAD_ID, "applied") == {"refund"}


def test_a_tag_that_never_landed_is_sent_by_the_retry(live_rt, livechat):
    seed(livechat)
    livechat.fail_next("tag_thread", status=503)
    with pytest.raises(OutboundError):
        tagging.tag_once(live_rt, ChatRef("livechat", CHAT_ID, THREAD_ID), "refund")
    tagging.tag_once(live_rt, ChatRef("livechat", CHAT_ID, THREAD_ID), "refund")
    assert tag_calls(livechat) == ["refund", "refund"]
    assert livechat.chat(CHAT_ID)["thread"]["tags"] == ["refund"]


def test_a_tag_refused_for_good_does_not_keep_the_other_tags_off_the_thread(live_rt, livechat):
    seed(livechat)
    deliver(live_rt, "incoming_chat")
    livechat.fail_next("tag_thread", error_type="validation", message="tag order-status does not exist")
    deliver(live_rt, "chat_deactivated")
    assert "refund" in livechat.chat(CHAT_ID)["thread"].get("tags", [])

