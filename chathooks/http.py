"""Shared plumbing for outbound calls: one classified error type and one JSON request helper."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from chathooks.observed import OBSERVATIONS

Timeout = float | tuple[float, float]
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)

_MAX_MESSAGE = 500
_STATUS_TYPES = {
    400: "validation",
    401: "authentication",
    403: "authorization",
    404: "not_found",
    408: "request_timeout",
    409: "conflict",
    413: "entity_too_large",
    422: "validation",
    429: "too_many_requests",
    500: "internal",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class OutboundError(Exception):
    """A failed outbound call, classified so that callers know whether a retry can help.

    ``transient`` errors (timeouts, dropped connections, 429, 5xx, rate limits) may succeed
    later, after ``retry_after`` seconds when the server said so (or, after a read timeout, as
    long as the client waited); the others are final.
    """

    def __init__(
        self,
        service: str,
        method: str,
        type: str,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        # Only the positional fields go to args: pickling re-creates the error from args
        # and restores the keyword fields from __dict__.
        super().__init__(service, method, type, message)
        self.service = service
        self.method = method
        self.type = type
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.data = data  # what the error body adds (LiveChat's ``error.data``), for the caller to act on

    def __str__(self) -> str:
        facts = [f"HTTP {self.status}"] if self.status is not None else []
        facts.append("transient" if self.transient else "final")
        if self.retry_after is not None:
            facts.append(f"retry after {self.retry_after:g}s")
        return f"{self.service} {self.method}: {self.type} ({', '.join(facts)}): {self.message}"

    def __repr__(self) -> str:
        return f"OutboundError({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the error (for the dead-letter store)."""
        return {
            "service": self.service,
            "method": self.method,
            "type": self.type,
            "message": self.message,
            "status": self.status,
            "transient": self.transient,
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class ErrorInfo:
    """What a service's error response says; ``transient=None`` leaves it to the HTTP status."""

    type: str
    message: str
    transient: bool | None = None
    data: Mapping[str, Any] | None = None


ErrorParser = Callable[[requests.Response], ErrorInfo]


def status_type(status: int) -> str:
    """A generic error type for an HTTP status, for responses that carry none of their own."""
    return _STATUS_TYPES.get(status) or ("internal" if status >= 500 else f"http_{status}")


def transient_status(status: int) -> bool:
    """429, 408 and 5xx may succeed later; other statuses will not."""
    return status in (408, 429) or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def json_body(response: requests.Response) -> Any:
    """The response's JSON body, or None when it has none or it is not JSON."""
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


class JsonHttp:
    """A requests.Session bound to one service: explicit timeouts, classified errors, no leaked secrets."""

    def __init__(
        self,
        service: str,
        session: requests.Session | None,
        timeout: Timeout,
        parse_error: ErrorParser,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.service = service
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout
        self._parse_error = parse_error
        self._secrets = tuple(s for s in secrets if s)

    def call(
        self,
        http_method: str,
        url: str,
        *,
        label: str,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        secrets: Iterable[str | None] = (),
    ) -> Any:
        """Send one request (a JSON body, or ``data`` form-encoded); return the decoded JSON answer (None when
        empty) or raise OutboundError."""
        started, outcome = time.perf_counter(), "ok"
        try:
            return self._call(http_method, url, label=label, json=json, data=data, params=params, headers=headers,
                              auth=auth, secrets=secrets)
        except OutboundError as exc:
            outcome = exc.type
            raise
        finally:
            OBSERVATIONS.count("chathooks_outbound_requests", self.service, label, outcome)
            OBSERVATIONS.observe("chathooks_outbound_seconds", time.perf_counter() - started, self.service, label)

    def _call(self, http_method: str, url: str, *, label: str, json: Any, data: Mapping[str, Any] | None,
              params: Mapping[str, Any] | None, headers: Mapping[str, str] | None, auth: tuple[str, str] | None,
              secrets: Iterable[str | None]) -> Any:
        hide = self._secrets + tuple(s for s in secrets if s) + _basic_credential(auth)
        try:
            # No redirects: following a 301/302 would silently turn the POST into a bodiless GET.
            response = self.session.request(
                http_method,
                url,
                json=json,
                data=data,
                params=params,
                headers={"Accept": "application/json", "User-Agent": "chathooks", **(headers or {})},
                auth=auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        # The requests exception holds the prepared request, Authorization header included,
        # so it is described in the message and not chained.
        except requests.ReadTimeout as exc:
            # The server got the request and may still carry it out: give it as long again before a retry.
            raise self._failure(label, "timeout", exc, hide, retry_after=self.read_timeout) from None
        except requests.Timeout as exc:
            raise self._failure(label, "timeout", exc, hide) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise self._failure(label, "connection", exc, hide) from None
        except requests.RequestException as exc:
            raise self._failure(label, "request", exc, hide, transient=False) from None

        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise OutboundError(
                    self.service, label, "invalid_response", "the response body is not JSON", status=status
                ) from None
        info = self._parse_error(response)
        raise OutboundError(
            self.service,
            label,
            info.type,
            _redact(info.message or response.reason or "", hide),
            status=status,
            transient=transient_status(status) if info.transient is None else info.transient,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            data=info.data,
        )

    def redact(self, text: str, auth: tuple[str, str] | None = None) -> str:
        """``text`` without this service's secrets (and ``auth``'s Basic credential), cut to a message's length."""
        return _redact(text, self._secrets + _basic_credential(auth))

    @property
    def read_timeout(self) -> float:
        return self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout

    def _failure(
        self, label: str, kind: str, exc: Exception, hide: tuple[str, ...], *, transient: bool = True,
        retry_after: float | None = None,
    ) -> OutboundError:
        message = _redact(f"{type(exc).__name__}: {exc}", hide)
        return OutboundError(self.service, label, kind, message, transient=transient, retry_after=retry_after)


def _basic_credential(auth: tuple[str, str] | None) -> tuple[str, ...]:
    """The Authorization header's token for ``auth``: an upstream error echoing the header must not carry it."""
    return (base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii"),) if auth else ()


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:  # shorter strings would blank out ordinary words
            text = text.replace(secret, "***")
    return text[:_MAX_MESSAGE]
