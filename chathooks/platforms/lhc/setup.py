"""``chathooks lhc template``: the Rest API call, the trigger and the webhook rows to create in LHC.

LHC has no REST endpoint that creates webhooks, so this prints what to paste: one Rest API call
whose raw JSON body serves every event (LHC writes placeholders as JSON values, quotes included,
so the template has none of its own), a bot trigger that runs it with "Do not save response"
ticked, and one webhook row per event.
"""

from __future__ import annotations

import json
from typing import Any, TextIO
from urllib.parse import urlsplit

from chathooks.platforms.lhc.adapter import EVENTS

CHAT_FIELDS = ("id", "status", "status_sub", "dep_id", "user_id", "iwh_id", "nick", "email", "phone", "time",
               "cls_time", "last_user_msg_time", "last_op_msg_time", "lsync")
MSG_FIELDS = ("id", "msg", "user_id", "time", "name_support", "meta_msg")
MASKED = "<one of LHC_WEBHOOK_SECRETS>"


def body_template(rating_question: int = 1) -> str:
    """The raw JSON body: individual fields only (a whole object can carry an operator's password hash)."""
    n = rating_question

    def obj(name: str, fields: tuple[str, ...], path: str | None = None) -> str:
        return f'"{name}": {{' + ", ".join(f'"{f}": {{{{args.{path or name}.{f}}}}}' for f in fields) + "}"

    parts = [
        '"event": {{args.lhc_event}}', '"trigger_event": {{custom_args_1}}', '"webhook_id": {{args.webhook_id}}',
        '"sent_at": {{timestamp}}', obj("chat", CHAT_FIELDS), obj("msg", MSG_FIELDS),
        obj("operator", ("id", "name_support"), "user_data"),
        obj("survey", ("id", f"max_stars_{n}", f"max_stars_{n}_title")),
        obj("survey_item", ("id", f"max_stars_{n}", f"question_plain_{n}", "ftime")),
    ]
    return "{\n  " + ",\n  ".join(parts) + "\n}"


def rest_api(url: str, token: str, rating_question: int = 1) -> dict[str, Any]:
    """The Rest API call (System configuration → Bot → Rest API Calls → New), as LHC stores it."""
    parts = urlsplit(url)
    return {
        "host": f"{parts.scheme}://{parts.netloc}", "log_audit": False, "log_system": False, "log_code": "",
        "sr_body": False, "ecache": False,
        "parameters": [{
            "id": "chathooks", "name": "chathooks", "position": 0, "method": "POST",
            "suburl": parts.path or "/webhooks/lhc", "max_execution_time": 5,
            "authorization": "bearer", "auth_bearer": token, "api_key_location": "header",
            "header": [], "query": [], "conditions": [], "postparams": [], "userparams": [], "output": [],
            "body_request_type": "raw", "body_request_type_content": "json",
            "body_raw": body_template(rating_question),
        }],
    }


def trigger(event: str) -> dict[str, Any]:
    """The bot trigger's Rest API action: "Do not save response" ticked, the event as the fallback argument."""
    return {"type": "restapi", "content": {
        "rest_api": "<the Rest API call's id>", "rest_api_method": "chathooks", "rest_api_method_params": {},
        "rest_api_method_output": {}, "attr_options": {"no_body": True, "custom_args_1": event}}}


def print_template(url: str, token: str | None, out: TextIO, rating_question: int = 1,
                   show_token: bool = False) -> None:
    shown = token if show_token and token else MASKED
    out.write("1. Rest API call (System configuration → Bot → Rest API Calls → New), as LHC stores it:\n\n")
    out.write(json.dumps(rest_api(url, shown, rating_question), indent=2, ensure_ascii=False) + "\n\n")
    out.write("2. One bot trigger per event, each with one Rest API action (\"Do not save response\" ticked;\n"
              "   custom argument 1 is the event, the fallback for LHC before 4.79v):\n\n")
    for event in EVENTS:
        out.write(f"   {event}: {json.dumps(trigger(event), ensure_ascii=False)}\n")
    out.write("\n3. Webhook rows (System configuration → Webhooks → New; type \"This is hook event\", "
              "no conditions):\n\n")
    for event in EVENTS:
        out.write(f"   event {event:<28} bot/trigger: the trigger of {event}\n")
    out.write("\n4. settings/settings.ini.php: 'webhooks' => ['enabled' => true, 'worker' => 'resque'] (or 'http').\n")
    if not show_token:
        out.write("\nThe Bearer token is masked: --show-token prints it.\n")
