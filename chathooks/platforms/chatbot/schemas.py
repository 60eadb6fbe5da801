"""Marshmallow schema of a ChatBot.com webhook block's POST (reference/livechat-platform.md §8).

Unknown fields are tolerated. ``messageId`` names the event (it is what a repeat shares); the
block is found by ``node.webhookName`` or ``node.name``; ``userAttributes`` and ``attributes`` are
flat maps whose values fill the answer's templates.
"""

from __future__ import annotations

from marshmallow import fields, validate

from chathooks.platforms.livechat.schemas import Tolerant, id_field

TEXT = validate.Length(max=1024)


def _text() -> fields.String:
    return fields.String(allow_none=True, validate=TEXT)


class NodeSchema(Tolerant):
    id = _text()
    name = _text()
    type = _text()
    webhookId = _text()  # noqa: N815 (ChatBot's field names)
    webhookName = _text()  # noqa: N815


class WebhookSchema(Tolerant):
    chatId = id_field(allow_none=True)  # noqa: N815
    messageId = id_field(required=True)  # noqa: N815
    userId = id_field(allow_none=True)  # noqa: N815
    externalId = id_field(allow_none=True)  # noqa: N815
    node = fields.Nested(NodeSchema, required=True)
    userAttributes = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=256)),  # noqa: N815
                                 load_default=dict)
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=256)), load_default=dict)
