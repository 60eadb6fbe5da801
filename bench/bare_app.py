"""B1/B2's (and B6's) yardstick: a bare Flask app that parses the same JSON body and answers 200.

Served by the same gunicorn command as the ingress (``gunicorn 'bench.bare_app:create_app()'``).
"""

from __future__ import annotations

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/livechat")
    @app.post("/webhooks/chatbot")  # B6's yardstick
    def receive() -> tuple[dict[str, str], int]:
        body = request.get_json()
        if not isinstance(body, dict):
            return {"error": "body must be a JSON object"}, 400
        return {"status": "ok"}, 200

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
