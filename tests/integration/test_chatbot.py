"""End to end: ChatBot.com webhook blocks answered from what the pipeline learnt in LiveChat chats.

Real gunicorn, Celery worker and beat, real Redis; FakeLiveChat and FakeMailchimp on loopback.
A LiveChat conversation for an email (a keyword tag, a bad rating) ends; the next ChatBot call for
that email is answered as a returning customer, with its chat count and last rating. A ChatBot call
with a new email is answered as a new customer and upserts the email to the list once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.chatbot import RULES
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import fixture
from tests.integration.conversation import Conversation
from tests.integration.processes import Process
from tests.integration.system import APOLOGY, OPENING, System, automation_env, happen, write_rules

pytestmark = pytest.mark.integration

TOKEN = "cb-e2e-t0ken"
# The benchmark's rules: a returning customer is greeted and offered their order; everyone else is not.
CHATBOT = RULES["chatbot"]


@pytest.fixture
def chatbot_system(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
                   mailchimp: FakeMailchimp) -> Iterator[tuple[System, FakeLiveChat]]:
    with FakeLiveChat() as lc:
        rules = write_rules(tmp_path / "rules.json", after_seconds=300)
        rules.write_text(json.dumps({**json.loads(rules.read_text()), "chatbot": CHATBOT}))
        env = {**automation_env(pipeline_env, lc, mailchimp, rules), "CHATBOT_WEBHOOK_TOKENS": TOKEN}
        yield System(env, tmp_path, processes), lc


def call(system: System, email: str, message_id: str) -> dict[str, Any]:
    body = fixture("webhook_block", "chatbot")
    body.update(messageId=message_id, externalId=None)
    body["userAttributes"].update(default_email=email, default_name="Jane Roe")
    response = system.http.post(f"{system.url}/webhooks/chatbot", params={"token": TOKEN}, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_livechat_customer_is_answered_as_returning_and_a_new_one_is_synced_once(chatbot_system, mailchimp):
    system, lc = chatbot_system
    verification = system.http.get(f"{system.url}/webhooks/chatbot", params={"challenge": "Zx81", "token": TOKEN},
                                   timeout=10)
    assert (verification.status_code, verification.text) == (200, "Zx81")

    conv = Conversation("3.6", customer_email="Jane.Roe@Example.org")
    happen(system, lc, conv, conv.routing_status("accepting_chats"))
    happen(system, lc, conv, conv.start(time.time(), OPENING))  # "a refund for order #1042"
    happen(system, lc, conv, conv.agent_joins(time.time()))
    happen(system, lc, conv, conv.agent_says(APOLOGY, time.time()))
    for step in conv.rated(0, time.time()):
        happen(system, lc, conv, step)
    happen(system, lc, conv, conv.deactivated())
    system.settle(timeout=40)

    answer = call(system, "jane.roe@example.org", "m-returning")
    assert answer["responses"] == [
        {"type": "text", "message": "Welcome back, Jane Roe!"},
        {"type": "quickReplies", "title": "Is it about order 1042?", "buttons": [
            {"type": "postback", "title": "Yes", "value": "order-1042"},
            {"type": "postback", "title": "No", "value": "other"}]}]
    attributes = answer["attributes"]
    assert (attributes["returning_customer"], attributes["previous_chats"], attributes["last_rating"]) == (
        "true", "1", "bad")
    assert {"refund", "order-status", "bad-rating"} <= set(attributes["tags"].split(", "))

    new = "new.customer@example.net"
    assert call(system, new, "m-new") == {"attributes": {"returning_customer": "false"}}
    assert call(system, new, "m-new") == {"attributes": {"returning_customer": "false"}}  # ChatBot calling again
    system.settle(timeout=30)
    upserts = [r for r in mailchimp.calls("member") if r.json["email_address"] == new]
    assert len(upserts) == 1 and upserts[0].json["merge_fields"] == {"FNAME": "Jane", "LNAME": "Roe"}
    assert system.dead_letters() == []
    # The returning customer's call synced an email the list had already: no second upsert for it.
    assert len([r for r in mailchimp.calls("member") if r.json["email_address"].lower() == conv.customer_email.lower()
                ]) == 1
