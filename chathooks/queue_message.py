"""The Celery protocol-2 message, built without a Celery app (the ingress hot path).

Every message of one task and queue has the same envelope but for four values, so the
envelope is serialised once into a template and each message fills it in by concatenation.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import socket
from typing import Any

from chathooks.events import Delivery
from chathooks.json_codec import dumps

PROCESS_DELIVERY = "chathooks.process_delivery"
RUN_JOB = "chathooks.run_job"
TICK = "chathooks.tick"

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_SLOT = re.compile(r"@@(\w+)@@")


def celery_message(task: str, args: list[Any], queue: str, task_id: str | None = None,
                   argsrepr: str | None = None) -> str:
    """The JSON envelope kombu's Redis transport stores for a protocol-2 task message; ``argsrepr`` is what
    Flower shows of its arguments (default: their size)."""
    task_id = task_id or new_task_id()
    body = task_body(args)
    values = {
        "body": base64.b64encode(body).decode(),
        "id": task_id,
        "argsrepr": json.dumps(argsrepr)[1:-1] if argsrepr else f"<{len(body)} bytes>",
    }
    # The template alternates literal text and slot names (odd positions).
    return "".join(values[part] if i % 2 else part for i, part in enumerate(_template(task, queue)))


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_task_id() -> str:
    """A random UUID (version 4) as text, as Celery's task ids are: at a third of ``str(uuid.uuid4())``'s cost."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def task_body(args: list[Any]) -> bytes:
    """A protocol-2 body, UTF-8 JSON: the arguments, no keyword arguments, no callbacks."""
    return dumps([args, {}, _EMBED])


def task_headers(task: str, task_id: str, argsrepr: str) -> dict[str, Any]:
    """A protocol-2 message's headers (what an AMQP publish sends as the message's headers)."""
    return {
        "lang": "py", "task": task, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
        "root_id": task_id, "parent_id": None, "argsrepr": argsrepr, "kwargsrepr": "{}",
        "origin": ORIGIN, "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None,
        "stamps": {},
    }


@functools.cache
def _template(task: str, queue: str) -> tuple[str, ...]:
    envelope = {
        "body": "@@body@@",
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": task_headers(task, "@@id@@", "@@argsrepr@@"),
        "properties": {
            "correlation_id": "@@id@@", "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            # kombu's unacked entries are keyed by it: unique per message, as the task id is.
            "body_encoding": "base64", "delivery_tag": "@@id@@",
        },
    }
    return tuple(_SLOT.split(json.dumps(envelope)))


ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def delivery_message(delivery: Delivery, queue: str) -> str:
    """A delivery's ``process_delivery`` message for kombu's Redis transport (what the workers consume)."""
    return celery_message(PROCESS_DELIVERY, [delivery.to_message()], queue, argsrepr=delivery_repr(delivery))


def delivery_repr(delivery: Delivery) -> str:
    """What Flower's task list shows of a delivery: source, action and chat (never a secret or message text)."""
    chat = delivery.chat_id
    return f"{delivery.source} {delivery.action}" + (f" chat {chat}" if chat else "")
