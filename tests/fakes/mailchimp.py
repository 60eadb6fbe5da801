"""A stateful fake of the Mailchimp Marketing API v3 list-member endpoints.

Routes (for ``calls`` and ``fail_next``): ``"member"`` (PUT .../members/{hash}) and
``"tags"`` (POST .../members/{hash}/tags). Errors are ``application/problem+json``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import uuid
from typing import Any

from chathooks.settings import MailchimpSettings
from tests.fakes.http_server import FakeHTTPServer, Reply, Request

STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
MERGE_FIELDS = frozenset({"FNAME", "LNAME"})
TITLES = {
    400: "Invalid Resource",
    401: "API Key Invalid",
    403: "Forbidden",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_PATH = re.compile(r"/3\.0/lists/(?P<list_id>[^/]+)/members/(?P<hash>[^/]+)(?P<tags>/tags)?")


class ApiError(Exception):
    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


def member_hash(email: str) -> str:
    """The member id Mailchimp derives from an address."""
    return hashlib.md5(email.lower().encode()).hexdigest()


def invalid(field: str, message: str, detail: str = "Invalid Resource") -> ApiError:
    return ApiError(400, detail, [{"field": field, "message": message}])


def problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> Reply:
    body: dict[str, Any] = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors:
        body["errors"] = errors
    return Reply(status, body, content_type="application/problem+json")


class FakeMailchimp(FakeHTTPServer):
    """Fake Mailchimp: one list, Basic auth with the API key as password; inspect ``members()`` and ``calls()``."""

    def __init__(self, api_key: str = "0123456789abcdef0123456789abcdef-us21", list_id: str = "a1b2c3d4e5") -> None:
        super().__init__()
        self.api_key = api_key
        self.list_id = list_id
        self._members: dict[str, dict[str, Any]] = {}  # subscriber hash → member

    # Test helpers

    @property
    def api_url(self) -> str:
        return f"{self.url}/3.0"

    def settings(self, **overrides: Any) -> MailchimpSettings:
        values = {"api_key": self.api_key, "list_id": self.list_id, "api_url": self.api_url}
        return MailchimpSettings(**(values | overrides))

    def members(self) -> dict[str, dict[str, Any]]:
        """Stored members by lowercased email address."""
        with self.lock:
            return {m["email_address"].lower(): copy.deepcopy(m) for m in self._members.values()}

    def calls(self, route: str | None = None) -> list[Request]:
        return self.recorded(route)

    def fail_next(
        self,
        route: str,
        status: int | None = 500,
        detail: str | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        close: bool = False,
        times: int = 1,
        email: str | None = None,
    ) -> None:
        """Make the next ``times`` calls on ``route`` ("member", "tags" or "*"), for ``email`` if given, fail.

        Answers a problem with ``status``; pass ``status=None`` with ``delay`` for a late normal answer.
        """
        reply = None
        if status is not None and not close:
            reply = problem(status, detail or f"injected {status}")
        when = None if email is None else (lambda r: f"/members/{member_hash(email)}" in r.path)
        self.fail(route, reply, retry_after, delay, close, times, when=when)

    # Protocol

    def route(self, request: Request) -> str:
        match = _PATH.fullmatch(request.path)
        if match is None:
            return request.path
        return "tags" if match["tags"] else "member"

    def handle(self, request: Request) -> Reply:
        try:
            self._authenticate(request)
            match = _PATH.fullmatch(request.path)
            if match is None or match["list_id"] != self.list_id:
                raise ApiError(404, "The requested resource could not be found.")
            if (request.method, bool(match["tags"])) == ("PUT", False):
                return Reply(200, self._upsert(match["hash"], self._body(request)))
            if (request.method, bool(match["tags"])) == ("POST", True):
                self._tag(match["hash"], self._body(request))
                return Reply(204)
            raise ApiError(405, "The requested method and resource are not compatible.")
        except ApiError as exc:
            return problem(exc.status, exc.detail, exc.errors)

    def _authenticate(self, request: Request) -> None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            password = None
        if scheme != "Basic" or password != self.api_key:
            raise ApiError(401, "Your API key may be invalid, or you've attempted to access the wrong datacenter.")

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if not isinstance(request.json, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return request.json

    def _upsert(self, subscriber_hash: str, body: dict[str, Any]) -> dict[str, Any]:
        email = body.get("email_address")
        if not isinstance(email, str) or "@" not in email:
            raise invalid("email_address", "This value should be a valid email.")
        if member_hash(email) != subscriber_hash:
            raise ApiError(400, "The subscriber hash in the URL does not match the email address.")
        for name in ("status_if_new", "status"):
            if name in body and body[name] not in STATUSES:
                raise invalid(name, "This value is not a valid status.")
        merge_fields = body.get("merge_fields", {})
        if not isinstance(merge_fields, dict):
            raise invalid("merge_fields", "Must be an object.")
        for key, value in merge_fields.items():
            if key not in MERGE_FIELDS or not isinstance(value, str):
                raise invalid(key, "Unknown merge field or not text.", "Your merge fields were invalid.")
        member = self._members.get(subscriber_hash)
        if member is None:
            status = body.get("status") or body.get("status_if_new")
            if status is None:
                raise invalid("status_if_new", "Required for new members.", "The resource could not be validated.")
            member = {
                "id": subscriber_hash,
                "email_address": email,
                "unique_email_id": uuid.uuid4().hex[:10],
                "status": status,
                "merge_fields": {"FNAME": "", "LNAME": ""},
                "tags": [],
                "list_id": self.list_id,
            }
            self._members[subscriber_hash] = member
        elif "status" in body:
            member["status"] = body["status"]
        member["merge_fields"].update(merge_fields)
        return copy.deepcopy(member)

    def _tag(self, subscriber_hash: str, body: dict[str, Any]) -> None:
        member = self._members.get(subscriber_hash)
        if member is None:
            raise ApiError(404, "The requested resource could not be found.")
        tags = body.get("tags")
        valid = isinstance(tags, list) and all(
            isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"]
            and t.get("status") in ("active", "inactive")
            for t in tags
        )
        if not valid:
            raise invalid("tags", "Each tag needs a name and a status of active or inactive.")
        for tag in tags:
            if tag["status"] == "active" and tag["name"] not in member["tags"]:
                member["tags"].append(tag["name"])
            elif tag["status"] == "inactive" and tag["name"] in member["tags"]:
                member["tags"].remove(tag["name"])
