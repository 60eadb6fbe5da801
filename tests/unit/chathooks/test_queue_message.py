import base64
import json
import uuid

from chathooks.queue_message import PROCESS_DELIVERY, celery_message, new_task_id, task_body


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


def test_task_ids_are_random_version_4_uuids():
    ids = {new_task_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 and str(uuid.UUID(i)) == i
               for i in ids)
