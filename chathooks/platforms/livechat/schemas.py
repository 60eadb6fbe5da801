"""Marshmallow schemas for LiveChat v3.5/v3.6 webhooks.

Unknown fields are tolerated everywhere (the platform adds fields between versions); what
the automations rely on is required and type-checked. Where the two versions or the docs
disagree (routing status spelling, ``organization_id`` vs ``license_id``), both are accepted.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

ID = validate.Length(min=1, max=256)


def id_field(**kwargs) -> fields.String:
    return fields.String(validate=ID, **kwargs)


class Tolerant(Schema):
    class Meta:
        unknown = INCLUDE


class EnvelopeSchema(Tolerant):
    webhook_id = id_field(required=True)
    secret_key = fields.String(required=True)
    action = fields.String(required=True, validate=validate.Length(min=1, max=100))
    organization_id = id_field()
    license_id = fields.Raw()  # pre-v3.4 deliveries; accepted, not required
    payload = fields.Dict(required=True)
    additional_data = fields.Dict(load_default=dict)


class UserSchema(Tolerant):
    id = id_field(required=True)
    type = fields.String(required=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class FormFieldSchema(Tolerant):
    type = fields.String(required=True)
    id = fields.String()
    label = fields.String(allow_none=True)
    answer = fields.Raw(allow_none=True)


class ChatEventSchema(Tolerant):
    id = id_field(required=True)
    type = fields.String(required=True)
    author_id = id_field(allow_none=True)  # system messages have none
    created_at = fields.String()
    text = fields.String(allow_none=True)
    system_message_type = fields.String()
    text_vars = fields.Dict()
    form_type = fields.String()
    fields = fields.List(fields.Nested(FormFieldSchema))


class ThreadSchema(Tolerant):
    id = id_field(required=True)
    active = fields.Boolean()
    events = fields.List(fields.Nested(ChatEventSchema), load_default=list)
    tags = fields.List(fields.String(), load_default=list)
    created_at = fields.String()


class ChatSchema(Tolerant):
    id = id_field(required=True)
    users = fields.List(fields.Nested(UserSchema), load_default=list)
    thread = fields.Nested(ThreadSchema, required=True)


class IncomingChatSchema(Tolerant):
    chat = fields.Nested(ChatSchema, required=True)


class IncomingEventSchema(Tolerant):
    chat_id = id_field(required=True)
    thread_id = id_field(required=True)
    event = fields.Nested(ChatEventSchema, required=True)


class ThreadRefSchema(Tolerant):
    chat_id = id_field(required=True)
    thread_id = id_field(required=True)


class ChatDeactivatedSchema(ThreadRefSchema):
    user_id = id_field()


class ThreadTagSchema(ThreadRefSchema):
    tag = fields.String(required=True, validate=validate.Length(min=1, max=256))


class ThreadPropertiesUpdatedSchema(ThreadRefSchema):
    properties = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True)


class ThreadPropertiesDeletedSchema(ThreadRefSchema):
    properties = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


ROUTING_STATUSES = (
    "accepting_chats",
    "not_accepting_chats",
    "offline",
    "accepting chats",
    "not accepting chats",
)


class RoutingStatusSetSchema(Tolerant):
    agent_id = id_field(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ROUTING_STATUSES))


class BotDeletedSchema(Tolerant):
    id = id_field(required=True)


class UserAddedSchema(Tolerant):
    chat_id = id_field(required=True)
    thread_id = id_field()
    user = fields.Nested(UserSchema, required=True)
    reason = fields.String()


class UserRemovedSchema(Tolerant):
    chat_id = id_field(required=True)
    thread_id = id_field()
    user_id = id_field(required=True)
    reason = fields.String()


class RatingScoreSchema(Tolerant):
    """``properties.rating`` of a thread: score 1 is good, 0 is bad."""

    score = fields.Integer(strict=True, validate=validate.OneOf((0, 1)))
    comment = fields.String(allow_none=True)
