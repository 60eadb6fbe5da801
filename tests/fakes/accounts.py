"""A stateful fake of the LiveChat OAuth server (https://accounts.livechat.com) for a server-side app.

It serves ``POST /v2/token`` (authorization-code and refresh-token grants, form-encoded or JSON),
``GET /v2/info`` and ``DELETE /v2/token``, with the documented rules: codes are single use and
short-lived, refresh tokens do not rotate, at most 25 access tokens live per client and user
account (the 26th revokes the oldest; with the one client here, per account), and revoking
either token of a grant revokes both.
Errors carry both the current (``error``) and the old (``oauth_exception``) names.

Linked to a FakeLiveChat, every access token it issues is granted there for its organization,
and every one that dies (revoked, capped out, expired) is withdrawn. Expiry by time is noticed
at the next request or helper call; ``expire_access_token`` kills a token at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from tests.fakes.http_server import FakeHTTPServer, Reply, Request
from tests.fakes.livechat import FakeLiveChat

DEFAULT_SCOPE = "chats--all:rw,agents-bot--my:rw,agents-bot--all:ro,agents--all:ro,webhooks.state:rw"
CODE_LIFETIME = 300  # seconds an authorization code may be exchanged
TOKEN_CAP = 25  # live access tokens per client and user account

# grant_type → the params it requires
_GRANT_PARAMS = {
    "authorization_code": ("code", "client_id", "client_secret", "redirect_uri"),
    "refresh_token": ("refresh_token", "client_id", "client_secret"),
}
_ROUTES = {("POST", "/v2/token"): "token", ("GET", "/v2/info"): "info", ("DELETE", "/v2/token"): "revoke"}


class OAuthError(Exception):
    def __init__(self, status: int, name: str, description: str) -> None:
        super().__init__(description)
        self.status, self.name, self.description = status, name, description

    def reply(self) -> Reply:
        return Reply(self.status, {
            "error": self.name, "error_description": self.description,
            "oauth_exception": self.name, "exception_description": self.description,
        })


@dataclass(frozen=True)
class _Code:
    organization_id: str
    account_id: str
    scope: str
    redirect_uri: str | None  # None: any redirect_uri is accepted at the exchange
    expires_at: float


@dataclass(frozen=True)
class _Grant:
    """One authorization: its refresh token, and what every access token issued with it carries."""

    refresh_token: str
    organization_id: str
    account_id: str
    scope: str


@dataclass(frozen=True)
class _AccessToken:
    grant: _Grant
    expires_at: float


class FakeAccounts(FakeHTTPServer):
    """Fake accounts server for one app (``client_id``/``client_secret``).

    Hand out codes with ``authorize``; inspect ``live_access_tokens()``, ``exchanges``,
    ``refreshes`` and ``recorded("token" | "info" | "revoke")``.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        livechat: FakeLiveChat | None = None,
        token_lifetime: int = 28800,
        region: str = "dal",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.livechat, self.token_lifetime, self.region = livechat, token_lifetime, region
        self._clock = clock
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}  # refresh token → grant
        self._tokens: dict[str, _AccessToken] = {}  # live access tokens, oldest first
        self._exchanges = self._refreshes = 0
        self.issued: list[str] = []  # every code, access token and refresh token handed out (for secrecy checks)

    # Test helpers

    def authorize(
        self,
        organization_id: str,
        account_id: str | None = None,
        *,
        scope: str = DEFAULT_SCOPE,
        redirect_uri: str | None = None,
    ) -> str:
        """What the browser flow hands the app: a fresh single-use code for ``organization_id``,
        authorized by ``account_id`` (default: one account per organization), valid CODE_LIFETIME s.
        With ``redirect_uri``, the exchange must send the same one."""
        with self.lock:
            code = f"{self.region}:code-{secrets.token_hex(16)}"
            self.issued.append(code)
            self._codes[code] = _Code(
                organization_id, account_id or f"account-{organization_id}", scope, redirect_uri,
                self._clock() + CODE_LIFETIME,
            )
            return code

    def revoke_grant(self, organization_id: str) -> None:
        """The customer withdrew consent: the organization's refresh and access tokens die."""
        with self.lock:
            self._sweep()
            for grant in [g for g in self._grants.values() if g.organization_id == organization_id]:
                self._revoke(grant)

    def expire_access_token(self, access_token: str) -> None:
        """Make an access token dead now (its refresh token still works)."""
        with self.lock:
            self._sweep()
            if access_token in self._tokens:
                self._kill(access_token)

    def live_access_tokens(self, organization_id: str | None = None) -> list[str]:
        """The live access tokens, oldest first, optionally of one organization."""
        with self.lock:
            self._sweep()
            return [
                token for token, t in self._tokens.items()
                if organization_id is None or t.grant.organization_id == organization_id
            ]

    @property
    def exchanges(self) -> int:
        """Successful authorization-code grants."""
        with self.lock:
            return self._exchanges

    @property
    def refreshes(self) -> int:
        """Successful refresh-token grants."""
        with self.lock:
            return self._refreshes

    # Protocol

    def route(self, request: Request) -> str:
        return _ROUTES.get((request.method, request.path), super().route(request))

    def handle(self, request: Request) -> Reply:
        self._sweep()
        try:
            if request.route == "token":
                return Reply(200, self._token(_params(request)))
            if request.route == "info":
                return Reply(200, self._info(_presented_token(request)))
            if request.route == "revoke":
                self._revoke_presented(_presented_token(request))
                return Reply(200, {})
            raise OAuthError(404, "not_found", f"{request.method} {request.path} not found")
        except OAuthError as exc:
            return exc.reply()

    def _token(self, p: dict[str, str]) -> dict[str, Any]:
        grant_type = p.get("grant_type")
        if grant_type is None:
            raise OAuthError(422, "invalid_request", "`grant_type` is required")
        if grant_type not in _GRANT_PARAMS:
            raise OAuthError(400, "unsupported_grant_type", f"`{grant_type}` is not supported")
        if missing := [name for name in _GRANT_PARAMS[grant_type] if name not in p]:
            raise OAuthError(422, "invalid_request", f"`{missing[0]}` is required")
        if (p["client_id"], p["client_secret"]) != (self.client_id, self.client_secret):
            raise OAuthError(401, "invalid_client", "unknown client or wrong client secret")
        if grant_type == "authorization_code":
            grant = self._exchange(p["code"], p["redirect_uri"])
            self._exchanges += 1
        else:
            grant = self._grants.get(p["refresh_token"])
            if grant is None:
                raise OAuthError(400, "invalid_grant", "the refresh token is unknown or revoked")
            self._refreshes += 1
        return self._issue(grant)

    def _exchange(self, code: str, redirect_uri: str) -> _Grant:
        """Use up ``code``: a new grant with a new refresh token."""
        authorized = self._codes.get(code)
        if authorized is None or authorized.expires_at <= self._clock():
            raise OAuthError(400, "invalid_grant", "the code is unknown, used or expired")
        if authorized.redirect_uri is not None and redirect_uri != authorized.redirect_uri:
            raise OAuthError(400, "invalid_grant", "`redirect_uri` differs from the authorization request's")
        del self._codes[code]
        grant = _Grant(secrets.token_hex(24), authorized.organization_id, authorized.account_id, authorized.scope)
        self._grants[grant.refresh_token] = grant
        return grant

    def _issue(self, grant: _Grant) -> dict[str, Any]:
        """A new access token for ``grant``, revoking the account's oldest one at the cap."""
        account_tokens = [token for token, t in self._tokens.items() if t.grant.account_id == grant.account_id]
        for token in account_tokens[: max(0, len(account_tokens) - TOKEN_CAP + 1)]:
            self._kill(token)
        token = f"{self.region}:{secrets.token_hex(24)}"
        self._tokens[token] = _AccessToken(grant, self._clock() + self.token_lifetime)
        self.issued += [token, grant.refresh_token]
        if self.livechat is not None:
            self.livechat.grant(grant.organization_id, token)
        return {
            "access_token": token,
            "account_id": grant.account_id,
            "expires_in": self.token_lifetime,
            "organization_id": grant.organization_id,
            "refresh_token": grant.refresh_token,  # a server-side app's refresh token does not rotate
            "scope": grant.scope,
            "token_type": "Bearer",
        }

    def _info(self, token: str | None) -> dict[str, Any]:
        live = self._tokens.get(token or "")
        if live is None:
            raise OAuthError(401, "invalid_token", "the access token is unknown, revoked or expired")
        return {
            "access_token": token,
            "account_id": live.grant.account_id,
            "client_id": self.client_id,
            "expires_in": int(live.expires_at - self._clock()),
            "organization_id": live.grant.organization_id,
            "scope": live.grant.scope,
            "token_type": "Bearer",
        }

    def _revoke_presented(self, token: str | None) -> None:
        if token is None:
            raise OAuthError(401, "invalid_token", "no token given")
        if token in self._tokens:
            self._revoke(self._tokens[token].grant)
        elif token in self._grants:
            self._revoke(self._grants[token])
        else:
            raise OAuthError(404, "not_found", "the token does not exist")

    # State

    def _revoke(self, grant: _Grant) -> None:
        """Revoke a grant: its refresh token and every access token issued with it."""
        del self._grants[grant.refresh_token]
        for token in [token for token, t in self._tokens.items() if t.grant is grant]:
            self._kill(token)

    def _kill(self, token: str) -> None:
        del self._tokens[token]
        if self.livechat is not None:
            self.livechat.withdraw(token)

    def _sweep(self) -> None:
        """Kill the access tokens whose time is up."""
        now = self._clock()
        for token in [token for token, t in self._tokens.items() if t.expires_at <= now]:
            self._kill(token)


def _params(request: Request) -> dict[str, str]:
    """The non-empty string params of a form-encoded or JSON body."""
    if request.headers.get("Content-Type", "").split(";")[0].strip() == "application/json":
        if not isinstance(request.json, dict):
            raise OAuthError(422, "invalid_request", "the JSON body must be an object")
        params = request.json
    else:
        params = dict(parse_qsl(request.body.decode(errors="replace")))
    return {name: value for name, value in params.items() if isinstance(value, str) and value}


def _presented_token(request: Request) -> str | None:
    """The token in ``Authorization: Bearer <token>`` or, failing that, in ``?code=<token>``."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ")
    codes = parse_qs(request.query).get("code")
    return codes[0] if codes else None
