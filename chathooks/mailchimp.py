"""Mailchimp Marketing API v3 client: list member upserts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import requests

from chathooks.http import DEFAULT_TIMEOUT, ErrorInfo, JsonHttp, Timeout, json_body, status_type
from chathooks.settings import MailchimpSettings


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lowercased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """Split a display name into (first, last).

    "Ada King Lovelace" → ("Ada", "King Lovelace"); "Lovelace, Ada" → ("Ada", "Lovelace"); blank → (None, None).
    """
    if full and "," in full:
        last, _, first = full.partition(",")
        return " ".join(first.split()) or None, " ".join(last.split()) or None
    parts = (full or "").split()
    if not parts:
        return None, None
    return parts[0], " ".join(parts[1:]) or None


class MailchimpClient:
    """Upserts list members; every failure raises OutboundError (429, 5xx and network errors are transient)."""

    def __init__(
        self,
        settings: MailchimpSettings,
        session: requests.Session | None = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.settings = settings
        self._http = JsonHttp("mailchimp", session, timeout, _parse_error, secrets=(settings.api_key,))

    def upsert_member(
        self,
        email: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        status_if_new: str = "subscribed",
        tags: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Create or update the list member for ``email``, then activate ``tags`` on it; return the member."""
        email = email.strip()
        if not email:
            raise ValueError("email is required")
        path = f"/lists/{self.settings.list_id}/members/{subscriber_hash(email)}"
        body: dict[str, Any] = {"email_address": email, "status_if_new": status_if_new}
        merge_fields = {key: value for key, value in (("FNAME", first_name), ("LNAME", last_name)) if value}
        if merge_fields:
            body["merge_fields"] = merge_fields
        member = self._call("PUT", path, body) or {}
        if tag_list := [{"name": tag, "status": "active"} for tag in tags]:
            self._call("POST", f"{path}/tags", {"tags": tag_list})
        return member

    def _call(self, http_method: str, path: str, body: dict[str, Any]) -> Any:
        # Mailchimp accepts any username with the API key as the password.
        return self._http.call(
            http_method,
            f"{self.settings.api_url.rstrip('/')}{path}",
            label=f"{http_method} {path}",
            json=body,
            auth=("chathooks", self.settings.api_key),
        )


def _parse_error(response: requests.Response) -> ErrorInfo:
    """Mailchimp errors are problem+json: ``{type, title, status, detail, instance, errors?}``."""
    body = json_body(response)
    if not isinstance(body, dict) or not body.get("title"):
        return ErrorInfo(status_type(response.status_code), response.reason or "unexpected response")
    fields = "; ".join(
        f"{e.get('field')}: {e.get('message')}" for e in body.get("errors") or () if isinstance(e, dict)
    )
    message = ". ".join(str(part) for part in (body["title"], body.get("detail"), fields) if part)
    return ErrorInfo(status_type(response.status_code), message)
