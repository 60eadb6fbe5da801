"""Live Helper Chat's REST API (``/restapi/…``) as its API user: Basic ``user:key``, form-encoded POSTs.

LHC reports some failures as ``{"error": true}`` with HTTP 200: those raise like any other error.
A failed login is HTTP 400 "Authorization failed!": final, as are a missing chat and a lack of rights.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests

from chathooks.http import DEFAULT_TIMEOUT, ErrorInfo, JsonHttp, OutboundError, Timeout, json_body, status_type
from chathooks.settings import LhcSettings

SERVICE = "lhc"
MAX_PAGES = 20  # fetchchatmessages pages of one chat's messages, at most

_FINAL = (("authoriz", "authorization"), ("permission", "authorization"), ("cannot read", "authorization"),
          ("cannot write", "authorization"), ("could not be found", "not_found"), ("not found", "not_found"))


class LhcClient:
    def __init__(self, settings: LhcSettings, session: requests.Session | None = None, *,
                 timeout: Timeout = DEFAULT_TIMEOUT) -> None:
        self._base = f"{settings.api_url.rstrip('/')}/restapi"
        self._auth = (settings.api_user, settings.api_key)
        self._http = JsonHttp(SERVICE, session, timeout, _parse_error, secrets=(settings.api_key,))

    def add_msg_admin(self, chat_id: str, msg: str, *, sender: str, no_event: bool,
                      subjects_ids: Iterable[int] = ()) -> dict[str, Any]:
        """Post ``msg`` into the chat as ``sender`` (``bot`` or ``system``); the stored message."""
        data = {"chat_id": chat_id, "msg": msg, "sender": sender}
        if no_event:
            data["no_event"] = "1"
        if subjects := ",".join(str(s) for s in subjects_ids):
            data["subjects_ids"] = subjects
        return self._call("POST", "addmsgadmin", data=data).get("msg") or {}

    def chat(self, chat_id: str, attrs: Iterable[str] = ("subject_ids",)) -> dict[str, Any]:
        """The chat's fields (``GET /restapi/chat/{id}``), with the magic attributes ``attrs``."""
        params = {"attr": ",".join(attrs)} if attrs else None
        result = self._call("GET", f"chat/{chat_id}", label="chat", params=params).get("result")
        if not isinstance(result, dict):
            raise OutboundError(SERVICE, "chat", "invalid_response", "the answer has no chat")
        return result

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        """Every message of the chat, oldest first (``fetchchatmessages``, page after page)."""
        out: list[dict[str, Any]] = []
        last = 0
        for _ in range(MAX_PAGES):
            result = self._call("GET", "fetchchatmessages", params={"chat_id": chat_id, "last_message_id": last})
            page = [m for m in ((result.get("result") or {}).get("messages") or []) if isinstance(m, dict)]
            ids = [int(m["id"]) for m in page if str(m.get("id", "")).isdigit()]
            if not ids or max(ids) <= last:
                break
            out += page
            last = max(ids)
        return out

    def _call(self, method: str, view: str, *, label: str | None = None, **kwargs: Any) -> dict[str, Any]:
        label = label or view
        body = self._http.call(method, f"{self._base}/{view}", label=label, auth=self._auth, **kwargs)
        if not isinstance(body, dict):
            raise OutboundError(SERVICE, label, "invalid_response", "the answer is not a JSON object")
        if body.get("error") is True:  # LHC's failure, even on HTTP 200: final when it says why, else worth a retry
            message = self._http.redact(_message(body), self._auth)
            info = _classify(message, 200) or ErrorInfo("lhc_error", message, transient=True)
            raise OutboundError(SERVICE, label, info.type, info.message, status=200, transient=bool(info.transient))
        return body


def _message(body: dict[str, Any]) -> str:
    for key in ("r", "result", "errors", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value:
            return "; ".join(map(str, value))
    return "error: true"


def _classify(message: str, status: int) -> ErrorInfo | None:
    """A final error LHC names (a failed login, a missing chat, no rights), or None."""
    lowered = message.lower()
    return next((ErrorInfo(kind, message, transient=False) for needle, kind in _FINAL if needle in lowered), None)


def _parse_error(response: requests.Response) -> ErrorInfo:
    body = json_body(response)
    message = (_message(body) if isinstance(body, dict) else (response.text or response.reason or "").strip())[:500]
    if response.status_code >= 500 or response.status_code == 429:
        return ErrorInfo(status_type(response.status_code), message)  # transient by the status
    return _classify(message, response.status_code) or ErrorInfo(status_type(response.status_code), message)
