"""ChatBot answer templates: names checked at start, values rendered as strings."""

from __future__ import annotations

import pytest

from chathooks.platforms.chatbot.templates import Context, Template, TemplateError, check_name, text

CONTEXT = Context({"name": "Jane", "known": "true", "chats": "3"},
                  {"default_email": "jane@example.org", "default_name": "Jane Roe", "plan": "pro", "seats": 5},
                  {"order_no": "1042", "vip": True, "nested": {"a": [1]}, "ratio": 0.5, "whole": 2.0})


@pytest.mark.parametrize("source, rendered", [
    ("Hi {{customer.name}}!", "Hi Jane!"),
    ("{{ customer.known }}/{{customer.chats}}", "true/3"),
    ("{{user.email}} {{user.name}} {{user.plan}} {{user.seats}}", "jane@example.org Jane Roe pro 5"),
    ("#{{attributes.order_no}} {{attributes.vip}} {{attributes.ratio}} {{attributes.whole}}", "#1042 true 0.5 2"),
    ("{{attributes.nested}}", '{"a":[1]}'),
    ("[{{attributes.missing}}][{{customer.last_rating}}]", "[][]"),
    ("no templates", "no templates"),
])
def test_render(source, rendered):
    assert Template.compile(source).render(CONTEXT) == rendered


def test_url_templates_quote_what_fills_them():
    template = Template.compile("https://shop.example.com/a?email={{user.email}}&n={{user.name}}", url=True)
    assert template.render(CONTEXT) == "https://shop.example.com/a?email=jane%40example.org&n=Jane%20Roe"


@pytest.mark.parametrize("source", ["{{customer.password}}", "{{nope.x}}", "{{customer}}", "{{}}", "a {{ b",
                                    "a }} b", "{{user.}}", "{{customer.name}"])
def test_unknown_names_and_broken_braces_are_errors(source):
    with pytest.raises(TemplateError):
        Template.compile(source)


def test_user_email_and_name_are_the_default_attributes():
    assert check_name("user.email") == ("user", "default_email")
    assert check_name("user.name") == ("user", "default_name")
    assert check_name("user.plan") == ("user", "plan")


@pytest.mark.parametrize("value, rendered", [(None, ""), (True, "true"), (False, "false"), (0, "0"), (12, "12"),
                                             (1.25, "1.25"), (3.0, "3"), ("x", "x"), ([1, "a"], '[1,"a"]')])
def test_values_render_as_strings(value, rendered):
    assert text(value) == rendered
