"""Marshmallow schema of the one JSON body chathooks' Rest API template sends for every LHC event.

Fields an event lacks arrive as ``null``; ids and times may be numbers or strings (LHC renders
its ints either way); unknown top-level fields are tolerated and kept as the event's attributes.
"""

from __future__ import annotations

from marshmallow import fields, validate

from chathooks.platforms.livechat.schemas import Tolerant

TIME = validate.Range(min=0, max=32_503_680_000)  # Unix seconds, up to the year 3000


def _int(**kwargs) -> fields.Integer:  # type: ignore[no-untyped-def]
    return fields.Integer(allow_none=True, **kwargs)  # lenient: 12 or "12"


def _text(max_length: int = 256) -> fields.String:
    return fields.String(allow_none=True, validate=validate.Length(max=max_length))


class ChatSchema(Tolerant):
    id = fields.Integer(required=True, validate=validate.Range(min=1))
    status = _int()
    status_sub = _int()
    dep_id = _int()
    user_id = _int()
    iwh_id = _int()
    nick = _text()
    email = _text()
    phone = _text()
    time = _int(validate=TIME)
    cls_time = _int(validate=TIME)
    last_user_msg_time = _int(validate=TIME)
    last_op_msg_time = _int(validate=TIME)
    lsync = _int(validate=TIME)


class MsgSchema(Tolerant):
    id = _int(validate=validate.Range(min=1))
    msg = _text(100_000)
    user_id = _int()
    time = _int(validate=TIME)
    name_support = _text()
    meta_msg = fields.Raw(allow_none=True)  # the JSON string LHC stores, or an object


class OperatorSchema(Tolerant):
    id = _int()
    name_support = _text()


STARS = range(1, 6)
SurveySchema = Tolerant.from_dict(
    {"id": _int(), **{f"max_stars_{n}": _int(validate=validate.Range(min=0, max=100)) for n in STARS},
     **{f"max_stars_{n}_title": _text(1024) for n in STARS}}, name="SurveySchema")
SurveyItemSchema = Tolerant.from_dict(
    {"id": _int(validate=validate.Range(min=1)), "ftime": _int(validate=TIME),
     **{f"max_stars_{n}": _int(validate=validate.Range(min=0, max=100)) for n in STARS},
     **{f"question_plain_{n}": _text(10_000) for n in STARS}}, name="SurveyItemSchema")


class WebhookSchema(Tolerant):
    event = _text(100)  # {{args.lhc_event}}, LHC 4.79v and later
    trigger_event = _text(100)  # {{custom_args_1}}: the trigger's own event name, the fallback
    webhook_id = fields.Raw(allow_none=True)
    sent_at = fields.Raw(allow_none=True)
    chat = fields.Nested(ChatSchema, required=True)
    msg = fields.Nested(MsgSchema, allow_none=True)
    operator = fields.Nested(OperatorSchema, allow_none=True)
    survey = fields.Nested(SurveySchema, allow_none=True)
    survey_item = fields.Nested(SurveyItemSchema, allow_none=True)
