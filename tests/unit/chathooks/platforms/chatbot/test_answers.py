"""The rules' chatbot section: ChatBot's response types and limits checked at start; first match answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chathooks.platforms.chatbot.answers import answer
from chathooks.profiles import UNKNOWN, Profile
from chathooks.rules import Rules, load_rules
from chathooks.settings import ConfigError
from tests.helpers import FIXTURES

GOTO = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"
RETURNING = Profile(known=True, chats=2, last_rating="bad", name="Jane Roe")
CALL = {"node": {"name": "Order lookup", "webhookName": "orders"}, "messageId": "m1",
        "userAttributes": {"default_email": "jane@example.org", "plan": "pro"}, "attributes": {"order_no": "1042"}}


def rules(tmp_path, chatbot: Any) -> Rules:  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"chatbot": chatbot}))
    return load_rules(str(path))


def rejected(tmp_path, chatbot: Any) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        rules(tmp_path, chatbot)
    return str(info.value)


def one(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"block": "*", "responses": [response]}]


def button(kind: str, value: str = "x", title: str = "Go") -> dict[str, str]:
    return {"type": kind, "title": title, "value": value}


VALID = [
    {"type": "text", "message": "Hello"},
    {"type": "text", "message": "x" * 1024, "delay": 100},
    {"type": "text", "message": "Hi {{customer.name}}", "delay": 10_000},
    {"type": "randomText", "messages": ["Hi", "Hello"]},
    {"type": "image", "image": "https://cdn.example.com/a.png"},
    {"type": "quickReplies", "title": "Pick one", "buttons": [button("postback"), button("goto", GOTO)] * 6
     + [button("postback")]},
    {"type": "buttons", "title": "Links", "buttons": [
        button("url", "https://example.com"), button("webview", "https://example.com/w"),
        button("phone", "+48123456789"), button("goto", GOTO), button("postback", "yes")]},
    {"type": "cards", "cards": [{"title": "Jacket", "subtitle": "Blue, M", "image": "https://cdn.example.com/j.png",
                                 "buttons": [button("url", "https://shop.example.com/j")]}, {"title": "Only a title"}]},
]


@pytest.mark.parametrize("response", VALID, ids=[r["type"] for r in VALID])
def test_every_response_type_within_its_limits_is_accepted(tmp_path, response):
    assert rules(tmp_path, one(response)).chatbot


INVALID = [
    ({"type": "text", "message": ""}, "message"),
    ({"type": "text", "message": "   "}, "message"),
    ({"type": "text", "message": "x" * 1025}, "message"),
    ({"type": "text", "message": "Hi", "delay": 99}, "delay"),
    ({"type": "text", "message": "Hi", "delay": 10_001}, "delay"),
    ({"type": "text", "message": "Hi", "delay": "100"}, "delay"),
    ({"type": "text"}, "message"),
    ({"type": "text", "message": "Hi", "colour": "red"}, "colour"),
    ({"type": "video", "url": "x"}, "type"),
    ({"message": "no type"}, "type"),
    ({"type": "randomText", "messages": []}, "messages"),
    ({"type": "randomText", "messages": ["ok", ""]}, "messages"),
    ({"type": "image", "image": "ftp://x/a.png"}, "image"),
    ({"type": "quickReplies", "title": "t", "buttons": []}, "buttons"),
    ({"type": "quickReplies", "title": "t", "buttons": [button("postback")] * 14}, "buttons"),
    ({"type": "quickReplies", "title": "t", "buttons": [button("url", "https://example.com")]}, "buttons"),
    ({"type": "quickReplies", "title": "x" * 641, "buttons": [button("postback")]}, "title"),
    ({"type": "buttons", "title": "t", "buttons": [button("postback")] * 6}, "buttons"),
    ({"type": "buttons", "title": "t", "buttons": [button("goto", "not-a-uuid")]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [button("goto", GOTO.replace("-4f70-", "-1f70-"))]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [button("goto", "{{attributes.block}}")]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [button("phone", "48123456789")]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [button("phone", "+48 123")]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [button("url", "example.com")]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [button("postback", title="x" * 21)]}, "title"),
    ({"type": "buttons", "title": "t", "buttons": [{"type": "postback", "title": "t"}]}, "value"),
    ({"type": "buttons", "title": "t", "buttons": [{"type": "call", "title": "t", "value": "x"}]}, "type"),
    ({"type": "cards", "cards": []}, "cards"),
    ({"type": "cards", "cards": [{"title": "t"}] * 11}, "cards"),
    ({"type": "cards", "cards": [{"title": "x" * 81}]}, "title"),
    ({"type": "cards", "cards": [{"title": "t", "buttons": [button("postback")] * 6}]}, "buttons"),
    ({"type": "cards", "cards": [{"subtitle": "no title"}]}, "title"),
    ({"type": "text", "message": "{{customer.password}}"}, "unknown template name 'customer.password'"),
]


@pytest.mark.parametrize("response, named", INVALID, ids=[f"{r.get('type')}-{n}" for r, n in INVALID])
def test_responses_chatbot_would_refuse_stop_the_start_naming_the_rule(tmp_path, response, named):
    error = rejected(tmp_path, [{"block": "Order lookup", "responses": [response]}])
    assert "chatbot[0] (block 'Order lookup')" in error and named in error


@pytest.mark.parametrize("rule, named", [
    ({"responses": []}, "block"),
    ({"block": " "}, "block"),
    ({"block": "b", "if": {"customer.nope": True}}, "customer.nope"),
    ({"block": "b", "if": {"customer.known": [True]}}, "if"),
    ({"block": "b", "attributes": {"x": "{{oops.x}}"}}, "oops.x"),
    ({"block": "b", "attributes": {"x": 5}}, "attributes"),
    ({"block": "b", "responses": [{"type": "text", "message": "m"}] * 21}, "responses"),
    ({"block": "b", "unknown": 1}, "unknown"),
])
def test_bad_rules_are_refused(tmp_path, rule, named):
    assert named in rejected(tmp_path, [rule])


CHATBOT = [
    {"block": "orders", "if": {"customer.known": True},
     "responses": [{"type": "text", "message": "Welcome back, {{customer.name}}! Order {{attributes.order_no}}?"}],
     "attributes": {"returning_customer": "{{customer.known}}", "previous_chats": "{{customer.chats}}",
                    "last_rating": "{{customer.last_rating}}"}},
    {"block": "Order lookup", "if": {"user.plan": "pro"}, "attributes": {"returning_customer": "{{customer.known}}"}},
    {"block": "*", "responses": [{"type": "text", "message": "Hello there"}]},
]


def test_the_first_matching_rule_answers_by_webhook_name(tmp_path):
    assert answer(rules(tmp_path, CHATBOT).chatbot, CALL, RETURNING) == {
        "responses": [{"type": "text", "message": "Welcome back, Jane Roe! Order 1042?"}],
        "attributes": {"returning_customer": "true", "previous_chats": "2", "last_rating": "bad"}}


def test_a_rule_whose_condition_fails_gives_way_to_the_next_by_node_name(tmp_path):
    assert answer(rules(tmp_path, CHATBOT).chatbot, CALL, UNKNOWN) == {"attributes": {"returning_customer": "false"}}


def test_star_matches_any_block(tmp_path):
    call = {**CALL, "node": {"name": "Elsewhere"}, "userAttributes": {}}
    assert answer(rules(tmp_path, CHATBOT).chatbot, call, UNKNOWN) == {
        "responses": [{"type": "text", "message": "Hello there"}], "attributes": {}}


def test_no_matching_rule_answers_empty_attributes(tmp_path):
    chatbot = rules(tmp_path, CHATBOT[:1]).chatbot
    assert answer(chatbot, {**CALL, "node": {"name": "Other"}}, RETURNING) == {"attributes": {}}
    assert answer((), CALL, RETURNING) == {"attributes": {}}


def test_conditions_compare_as_rendered(tmp_path):
    chatbot = rules(tmp_path, [{"block": "*", "if": {"customer.chats": 2, "attributes.order_no": 1042},
                                "attributes": {"ok": "yes"}}]).chatbot
    assert answer(chatbot, CALL, RETURNING) == {"attributes": {"ok": "yes"}}
    assert answer(chatbot, CALL, UNKNOWN) == {"attributes": {}}


def test_what_renders_past_a_limit_is_cut_and_what_renders_empty_is_left_out(tmp_path):
    chatbot = rules(tmp_path, one({"type": "text", "message": "{{attributes.long}}"})
                    + [{"block": "never"}]).chatbot
    assert answer(chatbot, {**CALL, "attributes": {"long": "y" * 5000}}, UNKNOWN)["responses"][0]["message"] == \
        "y" * 1024
    assert answer(chatbot, {**CALL, "attributes": {}}, UNKNOWN) == {"attributes": {}}


def test_a_button_whose_title_renders_empty_is_left_out_and_its_response_kept_while_buttons_remain(tmp_path):
    chatbot = rules(tmp_path, one({"type": "quickReplies", "title": "Pick", "buttons": [
        button("postback", title="{{attributes.a}}"), button("postback", title="B")]})).chatbot
    (response,) = answer(chatbot, CALL, UNKNOWN)["responses"]
    assert [b["title"] for b in response["buttons"]] == ["B"]


def test_url_values_are_filled_quoted(tmp_path):
    chatbot = rules(tmp_path, one({"type": "buttons", "title": "Account", "buttons": [
        button("url", "https://shop.example.com/account?email={{user.email}}")]})).chatbot
    (response,) = answer(chatbot, CALL, UNKNOWN)["responses"]
    assert response["buttons"][0] == {"type": "url", "title": "Go",
                                      "value": "https://shop.example.com/account?email=jane%40example.org"}


def test_the_specs_example_is_valid():
    (rule,) = load_rules(str(FIXTURES / "rules" / "chatbot_example.yaml")).chatbot
    assert rule.block == "Order lookup" and [name for name, _ in rule.attributes] == [
        "returning_customer", "previous_chats", "last_rating"]
