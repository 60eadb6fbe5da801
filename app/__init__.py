"""The Flask ingress: verify each webhook, queue it durably, answer in milliseconds."""

from __future__ import annotations

import logging

import redis
from flask import Flask

from chathooks.settings import Settings


def create_app(settings: Settings | None = None, *, redis_client: redis.Redis | None = None) -> Flask:
    """Create and configure an instance of the ingress application."""
    from app import livechat_app, openapi, ops, webhooks
    from app.ingress import Ingress, register_error_handlers

    settings = settings or Settings.from_env()
    settings.require_secrets()
    app = Flask(__name__, static_folder=None)
    # One byte over the limit may be read, so a chunked body of exactly the limit is told apart from a larger one.
    app.config["MAX_CONTENT_LENGTH"] = settings.ingress_max_bytes + 1
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # Flask's own OPTIONS answer is an empty HTML page
    app.json.sort_keys = False
    app.extensions["chathooks"] = Ingress.build(settings, redis_client)
    for source in webhooks.SOURCES:
        app.register_blueprint(source.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(livechat_app.bp)
    livechat_app.check(settings)
    app.extensions["chathooks.openapi"] = openapi.document(settings, (*webhooks.SOURCES, livechat_app))
    register_error_handlers(app)
    logging.getLogger("chathooks").setLevel(logging.INFO)
    return app
