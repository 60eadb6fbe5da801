"""Marketing-list sync: the customer's email and name upserted once per email and list."""

from __future__ import annotations

import hashlib

import pytest

from chathooks.events import Event, Kind
from chathooks.rules import load_rules
from tests.helpers import FIXTURES
from tests.unit.workers.conftest import (
    CHAT_ID, RULES, THREAD_ID, deliver, events, live_outbound, live_settings, records, retry_payloads, run_due,
)
from workers.dispatch import dispatch
from workers.handlers import marketing
from workers.runtime import Runtime

MINIMAL = load_rules(str(FIXTURES / "rules" / "minimal.json"))  # status_if_new: pending, no tags


def puts(mailchimp) -> list[dict]:  # type: ignore[no-untyped-def]
    return [r.json for r in mailchimp.calls("member") if r.method == "PUT"]


def without_email(payload: dict) -> None:
    """incoming_chat with an anonymous customer and no pre-chat form."""
    for user in payload["chat"]["users"]:
        user.pop("email", None)
    payload["chat"]["thread"]["events"] = [e for e in payload["chat"]["thread"]["events"] if e["type"] != "filled_form"]


def started(email: str | None, name: str | None = "Jane Roe") -> Event:
    return Event(key=f"livechat:{CHAT_ID}:{THREAD_ID}:started", source="livechat", kind=Kind.CHAT_STARTED,
                 chat_id=CHAT_ID, thread_id=THREAD_ID, customer_email=email, customer_name=name)


def test_incoming_chat_with_an_email_upserts_the_customer_once(live_rt, mailchimp):
    deliver(live_rt, "incoming_chat")  # the email is both on the customer and in the pre-chat form
    assert puts(mailchimp) == [{"email_address": "jane@example.org", "status_if_new": "subscribed",
                                "merge_fields": {"FNAME": "Jane", "LNAME": "Roe"}}]
    member = mailchimp.members()["jane@example.org"]
    assert member["status"] == "subscribed"
    assert member["tags"] == ["livechat"]
    assert member["id"] == hashlib.md5(b"jane@example.org").hexdigest()


def test_status_if_new_and_tags_come_from_the_rules(make_live, livechat, mailchimp):
    rt = make_live(livechat, mailchimp, rules=MINIMAL)
    deliver(rt, "incoming_chat")
    assert [p["status_if_new"] for p in puts(mailchimp)] == ["pending"]
    assert mailchimp.calls("tags") == []
    assert mailchimp.members()["jane@example.org"]["status"] == "pending"


@pytest.mark.parametrize("twice", [["incoming_chat", "incoming_chat"], ["incoming_chat.v3.5", "incoming_chat"]])
def test_the_same_chat_delivered_twice_is_one_upsert(live_rt, mailchimp, twice):
    deliver(live_rt, *twice)
    assert len(puts(mailchimp)) == 1


def test_a_later_form_email_is_upserted_for_that_email(live_rt, mailchimp):
    deliver(live_rt, "incoming_chat", "incoming_event.filled_form")
    assert [p["email_address"] for p in puts(mailchimp)] == ["jane@example.org", "jane.roe@example.org"]
    assert set(mailchimp.members()) == {"jane@example.org", "jane.roe@example.org"}


def test_a_later_form_delivered_twice_is_one_upsert(live_rt, mailchimp):
    deliver(live_rt, "incoming_event.filled_form", "incoming_event.filled_form")
    assert [p["email_address"] for p in puts(mailchimp)] == ["jane.roe@example.org"]


def test_the_same_email_in_another_case_is_the_same_member(live_rt, mailchimp):
    marketing.sync(started("jane@example.org"), live_rt)
    marketing.sync(started("Jane@Example.ORG"), live_rt)
    assert len(puts(mailchimp)) == 1


def test_no_email_sends_nothing(live_rt, mailchimp):
    dispatch(events("incoming_chat", live_rt.settings, without_email), live_rt)
    assert mailchimp.calls() == []


@pytest.mark.parametrize("email", [None, "", "   ", "not-an-email", "jane @example.org"])
def test_no_usable_email_sends_nothing(live_rt, mailchimp, email):
    marketing.sync(started(email), live_rt)
    assert mailchimp.calls() == [] and live_rt.outbound.records() == []


def test_without_mailchimp_configured_live_sync_is_off(make_live, livechat):
    rt = make_live(livechat)  # no MAILCHIMP_* settings
    deliver(rt, "incoming_chat")
    assert records(rt, "upsert_member") == []


def test_dry_run_records_the_upsert_once(dry_rt):
    deliver(dry_rt, "incoming_chat", "incoming_chat")
    (record,) = records(dry_rt, "upsert_member")
    assert record["outcome"] == "dry-run"
    assert (record["email"], record["first_name"], record["last_name"]) == ("jane@example.org", "Jane", "Roe")
    assert (record["status_if_new"], record["tags"]) == ("subscribed", ["livechat"])


def test_a_mailchimp_outage_is_retried_and_upserts_once(live_rt, mailchimp, clock):
    mailchimp.fail_next("member", status=503)
    deliver(live_rt, "incoming_event.filled_form")
    assert mailchimp.members() == {}
    assert [p["handler"] for p, _ in retry_payloads(live_rt)] == ["marketing.sync"]
    run_due(live_rt, clock.advance(300))
    deliver(live_rt, "incoming_event.filled_form")  # and a redelivery afterwards
    assert set(mailchimp.members()) == {"jane.roe@example.org"}
    assert len(puts(mailchimp)) == 2  # the failed one and the retry
    assert len(records(live_rt, "upsert_member", "sent")) == 1


def test_a_later_form_email_is_upserted_with_the_customers_name(live_rt, mailchimp):
    deliver(live_rt, "incoming_chat", "incoming_event.filled_form")
    later = [p for p in puts(mailchimp) if p["email_address"] == "jane.roe@example.org"]
    assert later and later[0].get("merge_fields") == {"FNAME": "Jane", "LNAME": "Roe"}


def test_a_dry_run_upsert_does_not_count_as_done_for_the_live_list(livechat, mailchimp, fake_redis):
    dry = live_settings(livechat, mailchimp, CHATHOOKS_DRY_RUN="1")
    assert dry.dry_run and dry.mailchimp is not None
    rt_dry = Runtime.build(dry, fake_redis, rules=RULES, outbound=live_outbound(dry, fake_redis, livechat, mailchimp))
    deliver(rt_dry, "incoming_chat")
    assert mailchimp.calls() == []
    live = live_settings(livechat, mailchimp, CHATHOOKS_KEY_PREFIX=dry.key_prefix)
    rt_live = Runtime.build(live, fake_redis, rules=RULES,
                            outbound=live_outbound(live, fake_redis, livechat, mailchimp))
    deliver(rt_live, "incoming_event.filled_form", "incoming_chat")
    assert set(mailchimp.members()) == {"jane@example.org", "jane.roe@example.org"}
