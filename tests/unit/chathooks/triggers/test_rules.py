"""The triggers section of the rules file: what loads, and start-time errors that name the trigger."""

from __future__ import annotations

import json

import pytest

from chathooks.rules import NudgeRule, Rules, load_rules
from chathooks.settings import ConfigError
from chathooks.triggers.conditions import ExprTest, FieldTest
from chathooks.triggers.rules import NUDGE, Action, nudge_trigger
from tests.helpers import FIXTURES

RULES = FIXTURES / "rules"


def load(tmp_path, *triggers: dict) -> Rules:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"triggers": list(triggers)}))
    return load_rules(str(path))


def error(tmp_path, *triggers: dict) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, *triggers)
    return str(e.value)


def trigger(name: str = "t", when=None, **extra) -> dict:
    return {"name": name, "when": [{"field": "messages", "op": "gte", "value": 1}] if when is None else when,
            "actions": [{"tag": "x"}], **extra}


def test_the_spec_example_and_the_lhc_examples_load():
    spec = load_rules(str(RULES / "spec_full.yaml"))
    assert [t.name for t in spec.firing.triggers] == [NUDGE, "hello-no-reply", "long-chat"]
    lhc = load_rules(str(RULES / "triggers.yaml"))
    assert [t.name for t in lhc.triggers] == ["hello-no-reply", "twice-in-a-row", "bot-no-reply", "long-chat"]
    hello, twice, bot, long = lhc.triggers
    assert hello.repeat == "window" and bot.repeat == "once"
    assert twice.actions == (Action("message", "We have your messages: someone is on the way."),
                             Action("tag", "waiting"))
    assert len(long.when) == 2 and isinstance(long.when[0][0], ExprTest)
    assert lhc.firing.attributes == {"status", "last_user_msg_time"} and not lhc.firing.reads_tags
    assert [t.field for t in lhc.firing.message_tests] == ["customer_message_text"]


def test_the_nudge_is_the_first_built_in_trigger():
    rules = Rules(nudge=NudgeRule(after_seconds=30, message="Hi"))
    (nudge,) = rules.firing.triggers
    assert nudge == nudge_trigger(30, "Hi") and nudge.actions == (Action("message", "Hi"),)
    assert not Rules().firing


def test_a_message_tests_results_are_ids_of_the_tests_it_passes(tmp_path):
    rules = load(tmp_path, trigger(when=[{"field": "customer_message_text", "op": "contains", "value": "refund"}]),
                 trigger("u", when=[{"field": "customer_message_text", "op": "eq", "value": "hi"}]))
    refund, hi = rules.firing.message_tests
    assert rules.firing.message_facts("A refund, please") == [refund.id]
    assert rules.firing.message_facts("HI") == [hi.id]


def test_tags_are_read_only_when_a_trigger_tests_them(tmp_path):
    assert load(tmp_path, trigger(when=[{"field": "tags", "op": "contains", "value": "vip"}])).firing.reads_tags


@pytest.mark.parametrize(("item", "message"), [
    ({"field": "nope", "op": "eq", "value": 1}, "unknown field 'nope'"),
    ({"field": "now", "op": "gt", "value": 1}, "unknown field 'now'"),
    ({"field": "seconds_waiting", "op": "gt", "value": 1}, "unknown field 'seconds_waiting'"),
    ({"field": "attributes.", "op": "eq", "value": 1}, "unknown field 'attributes.'"),
    ({"field": "messages", "op": "like", "value": 1}, "unknown operator 'like'"),
    ({"field": "messages", "op": "contains", "value": "x"}, "messages does not take contains"),
    ({"field": "status", "op": "gt", "value": 1}, "status does not take gt"),
    ({"field": "seconds_since_start", "op": "eq", "value": 600}, "seconds_since_start does not take eq"),
    ({"field": "tags", "op": "eq", "value": "x"}, "tags does not take eq"),
    ({"field": "messages", "op": "gt", "value": "3"}, "gt needs a number"),
    ({"field": "messages", "op": "gt", "value": True}, "gt needs a number"),
    ({"field": "messages", "op": "eq", "value": "three"}, "messages is a number"),
    ({"field": "status", "op": "eq", "value": "closed"}, "status is one of open, ended, not 'closed'"),
    ({"field": "last_message_author", "op": "in_list", "value": ["customer", "system"]}, "not 'system'"),
    ({"field": "source", "op": "eq", "value": "zendesk"}, "source is one of"),
    ({"field": "customer_email", "op": "empty", "value": "x"}, "empty takes no value"),
    ({"field": "customer_email", "op": "contains_any", "value": []}, "non-empty list"),
    ({"field": "customer_email", "op": "contains_any", "value": "x"}, "non-empty list"),
    ({"field": "customer_email", "op": "contains_any", "value": [" "]}, "list of words or phrases"),
    ({"field": "customer_email", "op": "contains", "value": " "}, "needs a text or number"),
    ({"field": "customer_email", "op": "eq", "value": [1]}, "needs a text or number"),
    ({"field": "messages", "op": "gt", "value": 1, "extra": 1}, "unknown key(s) extra"),
    ({"expr": "seconds_since_start >"}, "expr 'seconds_since_start >': unexpected end of expression"),
    ({"expr": "__import__('os') > 0"}, "unexpected character"),
    ({"expr": "status > 1"}, "status is not a number"),
    ({"expr": "messages > 1", "field": "x"}, "an expr condition has no other keys"),
    ({"expr": 5}, "must be a string"),
    ("messages > 1", "a condition is a mapping"),
])
def test_a_bad_condition_stops_the_start_naming_the_trigger_and_the_item(tmp_path, item, message):
    text = error(tmp_path, trigger("ok"), trigger("broken", when=[{"field": "messages", "op": "gt", "value": 0}, item]))
    assert "triggers[1] (name 'broken'): when: [1]: " in text and message in text, text


@pytest.mark.parametrize(("when", "message"), [
    ([], "must be a non-empty list of conditions"),
    ({"any": []}, "any: must be a non-empty list"),
    ({"all": [[]]}, "holds only `any`"),
    ({"any": [[{"field": "messages", "op": "gt", "value": 1}], {"any": []}]}, "any[1]must be a non-empty list"),
    ({"any": [[{"field": "messages", "op": "gt", "value": 1}], [{"field": "x", "op": "gt", "value": 1}]]},
     "any[1][0]: unknown field 'x'"),
    ("messages > 1", "must be a non-empty list of conditions"),
])
def test_when_is_a_list_or_any_of_lists_and_nothing_deeper(tmp_path, when, message):
    assert message in error(tmp_path, trigger(when=when))


@pytest.mark.parametrize(("extra", "message"), [
    ({"name": "nudge"}, "'nudge' is the built-in nudge's name"),
    ({"name": " padded"}, "must not be blank or padded"),
    ({"name": "a|b"}, "must not contain '|'"),
    ({"repeat": "always"}, "repeat: Must be one of: window, once"),
    ({"actions": []}, "actions: Shorter than minimum length 1"),
    ({"actions": [{"tag": "x", "message": "y"}]}, "an action is one of"),
    ({"actions": [{"tag": "  "}]}, "an action is one of"),
    ({"actions": [{"reply": "x"}]}, "reply: Unknown field"),
    ({"surprise": 1}, "surprise: Unknown field"),
])
def test_a_bad_trigger_stops_the_start(tmp_path, extra, message):
    text = error(tmp_path, {**trigger(), **extra})
    assert message in text, text


def test_trigger_names_are_unique(tmp_path):
    assert "two triggers are named 't'" in error(tmp_path, trigger(), trigger())


def test_an_item_is_built_once_at_load(tmp_path):
    when = [{"field": "customer_email", "op": "contains_any", "value": ["a", "b"]}]
    (t,) = load(tmp_path, trigger(when=when)).triggers
    (item,) = t.when[0]
    assert isinstance(item, FieldTest) and item.value == ("a", "b")
