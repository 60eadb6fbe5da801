"""gunicorn's logger redacts the secrets that ride in URLs, from the access log and the error log alike."""

from __future__ import annotations

import io
import logging

import pytest
from gunicorn.config import Config

from app.access_log import RedactingLogger, redact


@pytest.mark.parametrize("line, clean", [
    ('"POST /webhooks/chatbot?token=s3cret HTTP/1.1" 200', '"POST /webhooks/chatbot?token=*** HTTP/1.1" 200'),
    ("GET /webhooks/chatbot?challenge=abc&token=s3cret", "GET /webhooks/chatbot?challenge=abc&token=***"),
    ("GET /webhooks/chatbot?TOKEN=s3cret&x=1", "GET /webhooks/chatbot?TOKEN=***&x=1"),
    ("GET /livechat/callback?code=dal:abc&state=1", "GET /livechat/callback?code=***&state=1"),
    ("POST /livechat/app-webhooks/t0ken-123?x=1", "POST /livechat/app-webhooks/***?x=1"),
    ("GET /healthz", "GET /healthz"),
    ("GET /x?notatoken=1", "GET /x?notatoken=1"),
])
def test_redact(line, clean):
    assert redact(line) == clean


def test_access_and_error_lines_are_redacted():
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = RedactingLogger(cfg)
    out = io.StringIO()
    for log in (logger.access_log, logger.error_log):
        log.handlers = [logging.StreamHandler(out)]
    logger.access_log.info('%s "%s"', "127.0.0.1", "POST /webhooks/chatbot?token=s3cret HTTP/1.1")
    logger.error("Error handling request %s", "/webhooks/chatbot?token=s3cret")
    assert "s3cret" not in out.getvalue() and out.getvalue().count("token=***") == 2
