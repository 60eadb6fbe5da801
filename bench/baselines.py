"""B1L's and B1N's yardsticks: the bare Flask app plus the least an ack that waits for Redis can cost (one
round trip that claims a key and pushes the body), and plus Celery's own ``send_task`` (what a user writes
without chathooks). Served by the same gunicorn command as the ingress, on the namespace's Redis and queue.
"""

from __future__ import annotations

import os
import uuid

import redis
from flask import Flask, request

# One round trip: claim the delivery's key, push the body. KEYS: key, queue. ARGV: ttl, body.
_CLAIM_AND_PUSH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then redis.call('LPUSH', KEYS[2], ARGV[2]) return 1 end
return 0
"""


def _app(queue_body) -> Flask:  # type: ignore[no-untyped-def]
    app = Flask(__name__)

    @app.post("/webhooks/livechat")
    @app.post("/webhooks/livechat/v2")  # B1L's other routes: the same yardstick under each route's path
    @app.post("/webhooks/lhc")
    @app.post("/webhooks/chatbot")
    def receive() -> tuple[dict[str, str], int]:
        body = request.get_json()
        if not isinstance(body, dict):
            return {"error": "body must be a JSON object"}, 400
        queue_body(body)
        return {"status": "queued"}, 200

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_redis_app() -> Flask:
    """Bare + one Redis round trip (EVALSHA of a claim-and-push script)."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    script = client.register_script(_CLAIM_AND_PUSH)
    prefix, queue = os.environ["CHATHOOKS_KEY_PREFIX"], os.environ["CHATHOOKS_QUEUE"]

    def claim_and_push(body: dict) -> None:  # type: ignore[type-arg]
        payload = body.get("payload")
        event = payload.get("event") if isinstance(payload, dict) else None
        event_id = (event or {}).get("id") or uuid.uuid4().hex  # unique per request
        script(keys=[f"{prefix}dedupe:{event_id}", queue], args=[3600, request.get_data()])

    return _app(claim_and_push)


def create_send_task_app() -> Flask:
    """Bare + ``Celery.send_task`` to the namespace's queue on the same Redis (no dedupe)."""
    from celery import Celery

    celery = Celery("baseline", broker=os.environ["REDIS_URL"], set_as_current=False)
    queue = os.environ["CHATHOOKS_QUEUE"]

    def send(body: dict) -> None:  # type: ignore[type-arg]
        celery.send_task("chathooks.process_delivery", args=[body], queue=queue, ignore_result=True)

    return _app(send)
