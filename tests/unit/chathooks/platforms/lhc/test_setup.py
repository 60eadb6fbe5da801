"""``chathooks lhc template``: what LHC's Rest API call sends with it is what the ingress takes."""

from __future__ import annotations

import io
import json
import re

from chathooks.platforms.lhc.adapter import EVENTS, to_delivery
from chathooks.platforms.lhc.rules import LhcRule
from chathooks.platforms.lhc.setup import MASKED, body_template, print_template, rest_api
from cli.main import main

ARGS = {"args.lhc_event": "survey.filled", "custom_args_1": "survey.filled", "args.webhook_id": 3,
        "timestamp": 1766400012, "args.chat.id": 5388, "args.chat.nick": 'Marie "M" Curie', "args.chat.email": None,
        "args.survey.max_stars_2": 5, "args.survey_item.id": 9, "args.survey_item.max_stars_2": 5}


def as_lhc_sends(template: str, values: dict) -> str:  # type: ignore[type-arg]
    """LHC's substitution in a raw JSON body: each placeholder becomes json_encode(value), null when missing."""
    return re.sub(r"\{\{([^}]+)\}\}", lambda m: json.dumps(values.get(m[1])), template)


def test_the_body_template_filled_as_lhc_fills_it_is_a_call_the_adapter_takes(settings):
    body = json.loads(as_lhc_sends(body_template(rating_question=2), ARGS))
    (rated,) = to_delivery(body, settings, LhcRule(rating_question=2)).events
    assert (rated.chat_id, rated.rating, rated.customer_name) == ("5388", 1, 'Marie "M" Curie')


def test_the_template_holds_individual_fields_only():
    placeholders = re.findall(r"\{\{([^}]+)\}\}", body_template())
    assert "args.chat" not in placeholders and "args.user_data" not in placeholders
    assert all(p.count(".") >= 2 or p in ("args.lhc_event", "custom_args_1", "args.webhook_id", "timestamp")
               for p in placeholders)


def test_the_rest_api_call_is_a_bearer_json_post_to_the_url():
    (call,) = rest_api("https://hooks.example.com/webhooks/lhc", "t0k")["parameters"]
    assert (call["method"], call["suburl"], call["authorization"], call["auth_bearer"]) == (
        "POST", "/webhooks/lhc", "bearer", "t0k")
    assert (call["body_request_type"], call["body_request_type_content"]) == ("raw", "json")


def test_the_token_is_masked_unless_asked_for(capsys, monkeypatch):
    monkeypatch.setenv("LHC_WEBHOOK_SECRETS", "lhc-s3cret-token,older")
    assert main(["lhc", "template", "--url", "https://hooks.example.com/webhooks/lhc"]) == 0
    out = capsys.readouterr().out
    assert "lhc-s3cret-token" not in out and MASKED in out
    assert all(event in out for event in EVENTS) and '"no_body": true' in out
    assert main(["lhc", "template", "--url", "https://hooks.example.com/webhooks/lhc", "--show-token"]) == 0
    assert "lhc-s3cret-token" in capsys.readouterr().out


def test_show_token_without_a_token_is_a_configuration_error(capsys, monkeypatch):
    monkeypatch.delenv("LHC_WEBHOOK_SECRETS", raising=False)
    assert main(["lhc", "template", "--url", "https://h/webhooks/lhc", "--show-token"]) == 2
    assert "LHC_WEBHOOK_SECRETS" in capsys.readouterr().err


def test_print_template_lists_every_event_row():
    out = io.StringIO()
    print_template("https://hooks.example.com/webhooks/lhc", None, out)
    assert sum(line.strip().startswith("event ") for line in out.getvalue().splitlines()) == len(EVENTS)
