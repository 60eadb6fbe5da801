"""Marshmallow schemas for legacy LiveChat v2 webhooks (reference/livechat-platform.md §7).

A v2 webhook is one flat object: ``event_type``, ``token``, ``license_id`` and one key per data
type the webhook was registered with. Unknown fields are tolerated; what the automations rely
on is required and type-checked. Timestamps are Unix seconds.
"""

from __future__ import annotations

from marshmallow import fields, validate

from chathooks.platforms.livechat.schemas import Tolerant, id_field


def _timestamp() -> fields.Integer:
    """Unix seconds, up to the year 3000."""
    return fields.Integer(allow_none=True, validate=validate.Range(min=0, max=32_503_680_000))


class EnvelopeSchema(Tolerant):
    event_type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    license_id = fields.Raw(required=True)  # a string in samples, a number elsewhere: checked by the adapter
    event_unique_id = id_field()


class MessageSchema(Tolerant):
    user_type = fields.String(required=True)  # visitor | agent | supervisor
    author_name = fields.String(allow_none=True)
    agent_id = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    timestamp = _timestamp()


class ChatSchema(Tolerant):
    id = id_field(required=True)
    started_timestamp = _timestamp()
    ended_timestamp = _timestamp()
    messages = fields.List(fields.Nested(MessageSchema), load_default=list)
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=256)), load_default=list)


class VisitorSchema(Tolerant):
    id = id_field(required=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class SurveyFieldSchema(Tolerant):
    type = fields.String(allow_none=True)
    label = fields.String(allow_none=True)
    answer = fields.Raw(allow_none=True)


class RequesterSchema(Tolerant):
    mail = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class TicketEventSchema(Tolerant):
    date = fields.Raw(allow_none=True)


class TicketSchema(Tolerant):
    id = id_field(required=True)
    requester = fields.Nested(RequesterSchema, allow_none=True)
    events = fields.List(fields.Nested(TicketEventSchema), load_default=list)


class _WithVisitor(Tolerant):
    visitor = fields.Nested(VisitorSchema, allow_none=True)
    pre_chat_survey = fields.List(fields.Nested(SurveyFieldSchema), allow_none=True, load_default=list)


class ChatEventSchema(_WithVisitor):
    """``chat_started``, ``chat_ended`` and ``chat_changed``: the ``chat`` data type is required."""

    chat = fields.Nested(ChatSchema, required=True)


class VisitorQueuedSchema(Tolerant):
    visitor = fields.Nested(VisitorSchema, required=True)


class TicketCreatedSchema(Tolerant):
    ticket = fields.Nested(TicketSchema, required=True)
