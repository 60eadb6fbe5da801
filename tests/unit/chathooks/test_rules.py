from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chathooks.rules import MarketingRule, NudgeRule, RatingRule, Rules, TagRule, load_rules, tags_by
from chathooks.settings import ConfigError
from tests.helpers import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "rules"

SPEC_RULES = Rules(
    tagging=(
        TagRule(tag="refund", keywords=("refund", "money back")),
        TagRule(tag="order-status", pattern=r"\border\s*#?\d+"),
        TagRule(tag="canned-apology", keywords=("we apologise for the inconvenience",), author="agent"),
    ),
    nudge=NudgeRule(after_seconds=120, message="Thanks for waiting — an agent will be with you in a moment."),
    rating=RatingRule(
        good="Thank you! Would you mind reviewing us?",
        bad="We're sorry. What could we have done better?",
        bad_tag="bad-rating",
    ),
    marketing=MarketingRule(status_if_new="subscribed", tags=("livechat",)),
)


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_are_the_spec_example() -> None:
    assert load_rules(None) == SPEC_RULES


def test_spec_example_loads() -> None:
    assert load_rules(str(FIXTURES / "spec_example.yaml")) == SPEC_RULES


def test_json_file_loads() -> None:
    rules = load_rules(str(FIXTURES / "minimal.json"))  # tab-indented, which plain PyYAML rejects
    assert rules == Rules(
        tagging=(
            TagRule(tag="refund", keywords=("refund", "money back")),
            TagRule(tag="order-status", pattern=r"\border\s*#?\d+", author="customer"),
        ),
        nudge=NudgeRule(after_seconds=90, message="One moment, please."),
        marketing=MarketingRule(status_if_new="pending"),
    )


def test_absent_sections_turn_automations_off(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "rating:\n  good: Thanks!\n  bad: Sorry.\n"))
    assert rules == Rules(rating=RatingRule(good="Thanks!", bad="Sorry."))
    assert rules.tagging == () and rules.nudge is None and rules.marketing == MarketingRule()


def test_rules_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_rules(None).nudge.after_seconds = 1  # type: ignore[misc,union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour: red\n", "colour: Unknown field"),
        (
            "tagging:\n  - tag: refund\n    keyword: [refund]\n",
            "tagging[0] (tag 'refund'): keyword: Unknown field",
        ),
        (
            "tagging:\n  - tag: refund\n    keywords: [refund]\n  - tag: order-status\n    pattern: 'a[bc'\n",
            "tagging[1] (tag 'order-status'): pattern: bad regex: unterminated character set at position 1",
        ),
        ("nudge:\n  after_seconds: '120'\n  message: Hi\n", "nudge: after_seconds: Not a valid integer"),
        ("nudge:\n  after_seconds: 1.5\n  message: Hi\n", "nudge: after_seconds: Not a valid integer"),
        ("nudge:\n  after_seconds: true\n  message: Hi\n", "nudge: after_seconds: Not a valid integer"),
        ("nudge:\n  after_seconds: 0\n  message: Hi\n", "nudge: after_seconds: Must be greater than or equal to 1"),
        (
            "tagging:\n  - tag: vip\n    keywords: [vip]\n    author: bot\n",
            "tagging[0] (tag 'vip'): author: Must be one of: customer, agent, any",
        ),
        ("tagging:\n  - tag: vip\n", "tagging[0] (tag 'vip'): needs keywords or pattern"),
        ("tagging:\n  - tag: vip\n    keywords: []\n", "tagging[0] (tag 'vip'): needs keywords or pattern"),
        ("tagging:\n  - tag: vip\n    keywords: ['  ']\n", "tagging[0] (tag 'vip'): keywords[0]: must not be blank"),
        ("tagging:\n  - keywords: [vip]\n", "tagging[0]: tag: Missing data for required field"),
        ("tagging: refund\n", "tagging: Not a valid list"),
        ("marketing:\n  status_if_new: maybe\n", "marketing: status_if_new: Must be one of: subscribed, pending"),
        ("marketing:\n  tags: livechat\n", "marketing: tags: Not a valid list"),
        ("rating:\n  good: Thanks!\n", "rating: bad: Missing data for required field"),
        ("tagging: [\n", "invalid YAML at line 2, column 1"),
        ("", "expected a mapping at the top level, got an empty file"),
        ("- refund\n", "expected a mapping at the top level, got a list"),
    ],
)
def test_bad_rules_are_rejected_naming_the_rule(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_rules(path)
    assert str(excinfo.value).startswith(f"CHATHOOKS_RULES ({path}): ")
    assert expected in str(excinfo.value)


def test_every_problem_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nudge: after_seconds: .*; nudge: message: Missing data"):
        load_rules(write(tmp_path, "nudge:\n  after_seconds: -5\n"))


def test_unreadable_path(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"^CHATHOOKS_RULES \(.*missing\.yaml\): cannot read the file: No such file"):
        load_rules(path)


@pytest.mark.parametrize(
    ("text", "role", "tags"),
    [
        ("I want a Refund!", "customer", {"refund"}),
        ("where is my refund.", "customer", {"refund"}),
        ("REFUND", "agent", {"refund"}),
        ("it was refunded already", "customer", set()),
        ("prefund", "customer", set()),
        ("I want my money  back", "customer", {"refund"}),
        ("money\n\tback please", "customer", {"refund"}),
        ("moneyback", "customer", set()),
        ("Order #1042 is late", "customer", {"order-status"}),
        ("order 7", "customer", {"order-status"}),
        ("in order to help", "customer", set()),
        ("We apologise for the inconvenience.", "agent", {"canned-apology"}),
        ("We apologise for the inconvenience.", "customer", set()),
        ("Refund order#9, we apologise for the inconvenience", "agent", {"refund", "order-status", "canned-apology"}),
        ("refund please", "bot", set()),
        ("refund please", "system", set()),
    ],
)
def test_match_tags(text: str, role: str, tags: set[str]) -> None:
    assert load_rules(None).match_tags(text, role) == frozenset(tags)


def test_the_rules_a_text_matches_are_found_whoever_wrote_it_and_then_sorted_by_author() -> None:
    rules = load_rules(None)
    matched = rules.text_matches("Refund order#9, we apologise for the inconvenience")
    assert {rule.tag for rule in matched} == {"refund", "order-status", "canned-apology"}
    assert tags_by(matched, "customer") == {"refund", "order-status"}
    assert rules.text_matches("Thanks, bye") == ()


def test_keywords_and_pattern_together() -> None:
    rules = Rules(tagging=(TagRule(tag="shipping", keywords=("delivery",), pattern=r"track(ing)?\s+number"),))
    assert rules.match_tags("my Delivery", "customer") == {"shipping"}
    assert rules.match_tags("TRACKING   number?", "customer") == {"shipping"}
    assert rules.match_tags("deliveryman", "customer") == frozenset()


def test_keywords_are_literal_text() -> None:
    rules = Rules(tagging=(TagRule(tag="lang", keywords=("c++", "a.b")),))
    assert rules.match_tags("I write C++ daily", "customer") == {"lang"}
    assert rules.match_tags("axb", "customer") == frozenset()


def test_only_the_start_of_a_huge_text_is_matched() -> None:
    rules = Rules(tagging=(TagRule(tag="late", keywords=("late",)), TagRule(tag="early", keywords=("early",))))
    text = "early " + "x " * 50_000 + "late"
    assert rules.match_tags(text, "customer") == {"early"}
