import base64
import json

from chathooks.queue_message import PROCESS_DELIVERY, celery_message, task_body


def _args(message: str) -> list:
    envelope = json.loads(message)
    assert envelope["properties"]["body_encoding"] == "base64"
    args, kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
    assert kwargs == {} and embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return args


def test_a_message_carries_its_arguments_and_says_their_size_where_flower_shows_them():
    args = [{"text": "Grüße, ünïcode ✓", "n": 1.5}]
    message = celery_message(PROCESS_DELIVERY, args, "events")
    assert _args(message) == args
    assert json.loads(message)["headers"]["argsrepr"] == f"<{len(task_body(args))} bytes>"
