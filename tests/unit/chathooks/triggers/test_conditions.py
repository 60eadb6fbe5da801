"""Every field and operator of a condition, missing values, and the moment a condition can turn."""

from __future__ import annotations

import pytest

from chathooks.triggers.conditions import STEP, ExprTest, FieldTest, ThreadView, Truth, all_of, any_of, kind_of

NOW = 10_000.0
VIEW = ThreadView(
    status="open", started=NOW - 300, last_customer=NOW - 20, last_agent=NOW - 100, waiting_since=NOW - 40,
    last_author="customer", in_a_row=2, messages=7, customer_email="jane@example.org",
    tags=frozenset({"refund", "VIP"}), rating=0, source="lhc",
    attributes={"status": "5", "wait_time": 42, "department_name": "Sales team", "last_user_msg_time": str(NOW - 70)},
)
BARE = ThreadView()  # a thread that has only started: no messages, no email, no rating


def cond(field: str, op: str, value=None) -> FieldTest:
    return FieldTest.build(field, op, value, kind_of(field, internal=True) or "attribute")


def holds(field: str, op: str, value=None, view: ThreadView = VIEW) -> bool:
    return cond(field, op, value).check(view, NOW).holds


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("status", "eq", "open", True), ("status", "eq", "OPEN", True), ("status", "neq", "open", False),
    ("status", "in_list", ["ended", "open"], True), ("status", "not_in_list", ["ended"], True),
    ("last_message_author", "eq", "customer", True), ("last_message_author", "eq", "agent", False),
    ("customer_messages_in_a_row", "gte", 2, True), ("customer_messages_in_a_row", "gt", 2, False),
    ("customer_messages_in_a_row", "eq", 2, True), ("customer_messages_in_a_row", "neq", 2, False),
    ("messages", "lt", 8, True), ("messages", "lte", 7, True), ("messages", "lt", 7, False),
    ("messages", "in_list", [1, 7], True), ("messages", "not_in_list", [7], False),
    ("customer_email", "eq", "JANE@example.org", True), ("customer_email", "contains", "example", True),
    ("customer_email", "contains", "exam", False),  # whole words, as tagging
    ("customer_email", "contains_any", ["nope", "jane"], True), ("customer_email", "in_list", ["x@y.z"], False),
    ("tags", "contains", "refund", True), ("tags", "contains", "vip", True), ("tags", "contains", "late", False),
    ("tags", "contains_any", ["late", "refund"], True), ("tags", "notempty", None, True),
    ("tags", "empty", None, False),
    ("rating", "eq", 0, True), ("rating", "eq", 1, False), ("rating", "lt", 1, True),
    ("source", "eq", "lhc", True), ("source", "neq", "livechat", True),
    ("attributes.status", "eq", 5, True), ("attributes.status", "eq", "5", True), ("attributes.status", "gte", 5, True),
    ("attributes.wait_time", "gt", 40, True), ("attributes.wait_time", "in_list", ["42"], True),
    ("attributes.department_name", "contains", "sales", True), ("attributes.department_name", "gt", 1, False),
    ("attributes.department_name", "eq", "sales team", True), ("attributes.department_name", "notempty", None, True),
    ("attributes.missing", "empty", None, True), ("attributes.missing", "neq", "x", False),
])
def test_every_operator_on_every_kind_of_field(field, op, value, expected):
    assert holds(field, op, value) is expected


@pytest.mark.parametrize(("field", "op", "value"), [
    ("seconds_since_agent_message", "gte", 1), ("seconds_since_agent_message", "lt", 10 ** 9),
    ("seconds_since_agent_message", "notempty", None), ("customer_email", "neq", "x"), ("customer_email", "eq", "x"),
    ("customer_email", "contains_any", ["x"]), ("customer_email", "not_in_list", ["x"]), ("rating", "lt", 5),
    ("rating", "neq", 1), ("last_message_author", "neq", "bot"), ("customer_message_text", "neq", "hi"),
    ("customer_message_text", "notempty", None), ("tags", "contains", "x"), ("attributes.x", "lt", 1),
])
def test_a_field_with_no_value_makes_every_comparison_false(field, op, value):
    assert holds(field, op, value, BARE) is False


@pytest.mark.parametrize("field", ["seconds_since_agent_message", "customer_email", "rating", "tags",
                                   "last_message_author", "customer_message_text", "attributes.x"])
def test_but_empty_holds_on_a_field_with_no_value(field):
    assert holds(field, "empty", None, BARE) is True


def test_a_clock_counts_seconds_from_its_moment_and_turns_when_it_reaches_the_value():
    assert cond("seconds_since_customer_message", "gte", 25).check(VIEW, NOW) == Truth(False, NOW + 5)
    assert cond("seconds_since_customer_message", "gte", 20).check(VIEW, NOW) == Truth(True)
    assert cond("seconds_since_start", "lt", 600).check(VIEW, NOW) == Truth(True, NOW + 300)  # holds until then
    assert cond("seconds_since_agent_message", "gt", 99.5).check(VIEW, NOW) == Truth(True)
    assert cond("seconds_waiting", "gte", 120).check(VIEW, NOW) == Truth(False, NOW + 80)


def test_the_last_customer_message_is_tested_as_it_arrives_and_only_its_results_are_kept():
    hello = cond("customer_message_text", "contains_any", ["hello", "are you there"])
    assert hello.matches_text("Hi, ARE you\nthere?") and hello.matches_text("hello!")
    assert not hello.matches_text("othello") and not hello.matches_text("are you")
    assert cond("customer_message_text", "eq", "Thanks").matches_text("thanks")
    assert cond("customer_message_text", "empty").matches_text("   ")
    passed = ThreadView(has_customer_message=True, message_facts=frozenset({hello.id}))
    assert hello.check(passed, NOW).holds and not hello.check(ThreadView(has_customer_message=True), NOW).holds


def test_a_message_tests_id_is_stable_and_tells_tests_apart():
    assert cond("customer_message_text", "contains", "hi").id == cond("customer_message_text", "contains", "hi").id
    assert cond("customer_message_text", "contains", "hi").id != cond("customer_message_text", "eq", "hi").id


@pytest.mark.parametrize(("expr", "expected"), [
    ("seconds_since_start > 1.5 * 180", Truth(True)),  # 300 s
    ("seconds_since_start > 1.5 * 600", Truth(False, NOW - 300 + 900 + STEP)),  # just after: > not >=
    ("now - attributes.last_user_msg_time > 60", Truth(True)),
    ("now - attributes.last_user_msg_time > 100", Truth(False, NOW + 30 + STEP)),
    ("now - attributes.last_user_msg_time >= 100", Truth(False, NOW + 30)),
    ("messages % 2 == 1", Truth(True)),
    ("messages / 2 >= 4", Truth(False)),
    ("attributes.wait_time * 2 < seconds_since_customer_message + 100", Truth(True)),  # and stays true
    ("attributes.wait_time * 2 > seconds_since_customer_message + 100", Truth(False)),  # and never turns
    ("seconds_since_agent_message - seconds_since_customer_message >= 80", Truth(True)),  # both clocks: a constant
    ("attributes.department_name > 1", Truth(False)),  # not a number: no value
    ("seconds_since_agent_message > 1", Truth(True)),
    ("messages / 0 > 1", Truth(False)),
])
def test_expr_values_and_their_moments(expr, expected):
    assert ExprTest.build(expr).check(VIEW, NOW) == expected


def test_an_expr_on_a_field_with_no_value_is_false():
    assert ExprTest.build("seconds_since_agent_message > 1").check(BARE, NOW) == Truth(False)
    assert ExprTest.build("now - attributes.x > 1").check(BARE, NOW) == Truth(False)


def test_and_lists_hold_when_all_do_and_turn_at_the_nearest_moment():
    late = cond("seconds_since_customer_message", "gte", 25)  # turns at NOW + 5
    later = cond("seconds_since_start", "gte", 320)  # turns at NOW + 20
    author = cond("last_message_author", "eq", "customer")
    assert all_of((late, later, author))(VIEW, NOW) == Truth(False, NOW + 5)
    assert all_of((author,))(VIEW, NOW) == Truth(True)


def test_a_group_that_an_event_must_change_first_has_no_moment():
    agent = cond("last_message_author", "eq", "agent")
    assert all_of((agent, cond("seconds_since_customer_message", "gte", 25)))(VIEW, NOW) == Truth(False)


def test_any_holds_when_a_group_does_and_turns_at_the_nearest_groups_moment():
    groups = ((cond("last_message_author", "eq", "agent"),), (cond("seconds_since_customer_message", "gte", 25),),
              (cond("seconds_since_start", "gte", 900),))
    assert any_of(groups)(VIEW, NOW) == Truth(False, NOW + 5)
    assert any_of(groups + ((cond("messages", "gt", 1),),))(VIEW, NOW).holds


@pytest.mark.parametrize("sent", ["inf", "nan", "-Infinity", "1e999", "1_000", " ", "", "0x10", True])
def test_an_attribute_that_is_no_finite_decimal_is_no_number(sent):
    view = ThreadView(attributes={"x": sent})
    assert not cond("attributes.x", "gt", 0).check(view, NOW).holds
    assert ExprTest.build("attributes.x * 2 % 7 > 0").check(view, NOW) == Truth(False)


@pytest.mark.parametrize("sent", ["12", " 12 ", "+12.5", "-3", ".5", 12, 12.5])
def test_decimal_text_and_numbers_are_numbers(sent):
    assert cond("attributes.x", "gt", -10).check(ThreadView(attributes={"x": sent}), NOW).holds


@pytest.mark.parametrize(("op", "at_moment", "turns"), [("gte", True, None), ("gt", False, NOW + 1e-6),
                                                        ("lt", False, None), ("lte", True, NOW + 1e-6)])
def test_at_the_moment_itself_the_truth_and_the_next_moment_agree(op, at_moment, turns):
    # seconds_since_customer_message is exactly 20 at NOW: each operator says what holds, and when it turns
    assert cond("seconds_since_customer_message", op, 20).check(VIEW, NOW) == Truth(at_moment, turns)
    expr = {"gte": ">=", "gt": ">", "lt": "<", "lte": "<="}[op]
    assert ExprTest.build(f"seconds_since_customer_message {expr} 20").check(VIEW, NOW) == Truth(at_moment, turns)


def test_a_decreasing_expression_turns_the_other_way():
    # 100 - seconds_since_customer_message (80 at NOW) > 50 holds until the clock passes 50: already past
    assert ExprTest.build("100 - seconds_since_customer_message > 50").check(VIEW, NOW) == Truth(True, NOW + 30)


def test_a_test_made_without_build_checks_as_one_built():
    for field, op, value in [("messages", "gte", 5), ("status", "eq", "OPEN"), ("seconds_since_start", "gte", 200),
                             ("rating", "empty", None)]:
        made, built = FieldTest(field, op, value, kind_of(field)), FieldTest.build(field, op, value, kind_of(field))
        assert made.check(VIEW, NOW) == built.check(VIEW, NOW)
