"""The LiveChat accounts server (``LIVECHAT_ACCOUNTS_URL``): the authorization-code grant, refresh, revoke."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import requests

from chathooks.http import DEFAULT_TIMEOUT, ErrorInfo, JsonHttp, OutboundError, Timeout, json_body, status_type
from chathooks.settings import MarketplaceSettings

SERVICE = "livechat_accounts"
# What the accounts server answers when a grant can never work again: the tenant must authorise anew.
REAUTH_ERRORS = frozenset({"invalid_grant", "unauthorized_client", "invalid_client", "missing_grant"})


def needs_reauth(exc: OutboundError) -> bool:
    """Whether a refused grant means the tenant has to install (authorise) again."""
    return exc.service == SERVICE and exc.type in REAUTH_ERRORS


class AccountsClient:
    """The app's OAuth client (LIVECHAT_CLIENT_ID and _SECRET) at the accounts server."""

    def __init__(self, settings: MarketplaceSettings, session: requests.Session | None = None, *,
                 timeout: Timeout = DEFAULT_TIMEOUT) -> None:
        self.settings = settings
        self._http = JsonHttp(SERVICE, session, timeout, _parse_error, secrets=(settings.client_secret,))

    def authorize_url(self, state: str) -> str:
        """Where ``/livechat/install`` sends the installing user's browser."""
        query = {"response_type": "code", "client_id": self.settings.client_id,
                 "redirect_uri": self.settings.redirect_uri, "state": state}
        return f"{self.settings.accounts_url}/?{urlencode(query)}"

    def exchange(self, code: str) -> dict[str, Any]:
        """Trade an installation's code for its tokens (``organization_id``, ``access_token``, ...)."""
        grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.redirect_uri}
        return self._token(grant, "exchange_code", (code,))

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """A new access token (and whatever refresh token comes with it)."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, "refresh_token",
                           (refresh_token,))

    def revoke(self, token: str) -> None:
        """Revoke an access token (with its refresh token) or a refresh token."""
        self._http.call("DELETE", f"{self.settings.accounts_url}/v2/token", label="revoke_token",
                        headers={"Authorization": f"Bearer {token}"}, secrets=(token,))

    def _token(self, grant: dict[str, str], label: str, secrets: tuple[str, ...]) -> dict[str, Any]:
        form = {**grant, "client_id": self.settings.client_id, "client_secret": self.settings.client_secret}
        body = self._http.call("POST", f"{self.settings.accounts_url}/v2/token", label=label, data=form,
                               secrets=secrets)
        for name in ("access_token", "organization_id"):
            if not isinstance(body, dict) or not isinstance(body.get(name), str) or not body[name]:
                raise OutboundError(SERVICE, label, "invalid_response", f"the response has no {name!r}")
        expires = body.get("expires_in")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= 0):
            raise OutboundError(SERVICE, label, "invalid_response", "expires_in is not a positive number")
        return body


def _parse_error(response: requests.Response) -> ErrorInfo:
    # Documented both as {"error", "error_description"} and, older, {"oauth_exception", "exception_description"}.
    body = json_body(response)
    if isinstance(body, dict):
        kind = body.get("error") or body.get("oauth_exception")
        if isinstance(kind, str) and kind:
            message = body.get("error_description") or body.get("exception_description") or ""
            transient = kind in ("temporarily_unavailable", "server_error") or None
            return ErrorInfo(kind, str(message), transient)
    return ErrorInfo(status_type(response.status_code), response.reason or "unexpected response")
