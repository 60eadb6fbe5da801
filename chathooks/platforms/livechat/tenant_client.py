"""The LiveChat client of one installed organization: its own access token, its bot, its share of the rate."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import requests

from chathooks.http import DEFAULT_TIMEOUT, OutboundError, Timeout
from chathooks.platforms.livechat.client import LiveChatClient, TokenCache, bearer
from chathooks.platforms.livechat.fairness import OrganizationRate
from chathooks.platforms.livechat.tenants import LIVE, Tenant
from chathooks.platforms.livechat.tokens import TenantTokens
from chathooks.rate_limit import RateLimiter
from chathooks.settings import LiveChatSettings


class TenantClient(LiveChatClient):
    """Calls LiveChat for one organization. An ``authentication`` error on its access token refreshes the
    token once and retries the call once (the API did nothing with a call it refused at authentication)."""

    def __init__(self, settings: LiveChatSettings, tenant: Tenant, tokens: TenantTokens,
                 limiter: RateLimiter | None = None, session: requests.Session | None = None, *,
                 timeout: Timeout = DEFAULT_TIMEOUT, token_cache: TokenCache | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        # The bot-token settings are the organization's: issue_bot_token is asked with its bot and id.
        own = replace(settings, account_id=None, pat=None, access_token=None, bot_id=tenant.bot_id,
                      bot_secret=tenant.bot_secret, organization_id=tenant.organization_id)
        rate = OrganizationRate(limiter, tenant.organization_id) if limiter is not None else None
        super().__init__(own, session, timeout=timeout, token_cache=token_cache, clock=clock, rate=rate)
        self.organization = tenant.organization_id
        self._access = tokens
        self._sent: str | None = None  # the access token of the last agent call

    @property
    def has_agent(self) -> bool:
        return True

    def _agent_headers(self, method: str) -> dict[str, str]:
        tenant = self._access.current(self.organization)
        self._sent = tenant.access_token
        return _authorised(tenant)

    def _post(self, api: str, method: str, params: dict[str, Any], headers: dict[str, str],
              secrets: Iterable[str] = ()) -> Any:
        sent = self._sent if headers.get("Authorization") == f"Bearer {self._sent}" else None
        hide = (*secrets, sent or "")
        try:
            return super()._post(api, method, params, headers, hide)
        except OutboundError as exc:
            region = misdirected_to(exc)
            if region is not None and headers.get("X-Region") != region:
                # The organization lives in another data centre than its token says: retried there once, and
                # its calls go there from now on.
                self._access.store.transition(self.organization, LIVE, region=region)
                return super()._post(api, method, params, {**headers, "X-Region": region}, hide)
            if exc.type != "authentication" or sent is None:
                raise
        tenant = self._access.refresh(self.organization, sent)
        self._sent = tenant.access_token
        retried = {**headers, **_authorised(tenant)}
        return super()._post(api, method, params, retried, (*secrets, tenant.access_token or ""))


_REGION = re.compile(r"[a-z]{2,5}(?:-[a-z0-9]{1,3})?")


def misdirected_to(exc: OutboundError) -> str | None:
    """The data centre a ``misdirected_request`` error names (``error.data.region``), if it names one."""
    region = (exc.data or {}).get("region") if exc.type == "misdirected_request" else None
    return region if isinstance(region, str) and _REGION.fullmatch(region) else None


def _authorised(tenant: Tenant) -> dict[str, str]:
    """The organization's access token, with its data centre: as learned, else its token's prefix."""
    headers = bearer(tenant.access_token or "")
    if tenant.region:
        headers["X-Region"] = tenant.region
    return headers

