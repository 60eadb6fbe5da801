"""The Celery protocol-2 message, built without a Celery app (the ingress hot path)."""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from typing import Any

PROCESS_DELIVERY = "chathooks.process_delivery"


def celery_message(task: str, args: list[Any], queue: str, task_id: str | None = None) -> str:
    """The JSON envelope kombu's Redis transport stores for a protocol-2 task message."""
    task_id = task_id or str(uuid.uuid4())
    body = json.dumps([args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return json.dumps({
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task, "id": task_id, "shadow": None, "eta": None, "expires": None,
            "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
            "root_id": task_id, "parent_id": None, "argsrepr": f"<{len(body)} bytes>", "kwargsrepr": "{}",
            "origin": ORIGIN, "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    })


ORIGIN = f"{os.getpid()}@{socket.gethostname()}"
