"""gunicorn's logger with the secrets that ride in URLs redacted from every line, the access log included.

ChatBot.com puts its verification ``token`` in the query string; OAuth callbacks carry a ``code``;
LiveChat app webhooks name their token in the path. gunicorn's access log prints the request line
(query string included), and its error log the URI of a failed request: both pass through here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

_QUERY = re.compile(r"(?i)((?:^|[?&;\s])(?:token|code|secret_key)=)[^&;\s\"]*")
_PATH = re.compile(r"(/livechat/app-webhooks/)[^/?\s\"]+")


def redact(text: str) -> str:
    return _PATH.sub(r"\1***", _QUERY.sub(r"\1***", text))


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


class RedactingLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(_Redact())
