"""Many LiveChat licenses from one deployment, as a worker process acts on them (SPEC §11).

Every LiveChat v3 event is acted on with its own organization's credentials and bot; the
single-license environment configuration, when present, is one more (static) tenant: its
organization (``LIVECHAT_ORGANIZATION_ID``), and events that name none, keep using it.
"""

from __future__ import annotations

import hashlib
import logging
import time

import redis

from chathooks.http import Timeout
from chathooks.platforms.livechat import fairness, install
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.adapter import SOURCE
from chathooks.platforms.livechat.api import LiveChatAPI
from chathooks.platforms.livechat.client import LiveChatClient, RedisTokenCache
from chathooks.platforms.livechat.tenant_client import TenantClient
from chathooks.platforms.livechat.tenants import LIVE, Status, Tenant, TenantStore
from chathooks.platforms.livechat.tokens import TenantTokens
from chathooks.settings import LiveChatSettings, Settings

log = logging.getLogger(__name__)

RECENT = 1.0  # seconds a worker process acts on its copy of an active tenant before reading it again


class SealedTokenCache:
    """The bot tokens every worker shares, encrypted at rest like the tenants' other secrets."""

    def __init__(self, cache: RedisTokenCache, store: TenantStore) -> None:
        self._cache = cache
        self._store = store

    def get(self, key: str) -> tuple[str, float] | None:
        found = self._cache.get(key)
        token = self._store.unseal(found[0]) if found else None
        return (token, found[1]) if found and token else None

    def set(self, key: str, token: str, expires_at: float) -> None:
        self._cache.set(key, self._store.seal(token) if token else "", expires_at)


class Tenancy:
    """The installed organizations: their store, their tokens, and a ``LiveChatAPI`` for each."""

    def __init__(self, settings: Settings, client: redis.Redis, timeout: Timeout) -> None:
        market = settings.marketplace
        assert market is not None
        prefix = settings.key_prefix
        self.settings = settings
        self.store = TenantStore(client, prefix, market.secret_keys)
        self.accounts = AccountsClient(market, timeout=timeout)
        self.tokens = TenantTokens(self.store, self.accounts, client, prefix)
        self.limiter = fairness.limiter(market, client, prefix)
        self._bot_tokens = SealedTokenCache(RedisTokenCache(client, f"{prefix}bot-token:"), self.store)
        self._timeout = timeout
        self._static = settings.livechat.has_credentials
        self._apis: dict[tuple[str, str | None, str], LiveChatAPI] = {}
        self._recent: dict[str, tuple[float, Tenant]] = {}  # organization → (until, its active tenant)

    def serves(self, source: str, organization: str | None) -> bool:
        """Whether events of ``source`` from ``organization`` are a tenant's (not the static configuration's)."""
        if source != SOURCE:
            return False
        if self._static and (organization is None or organization == self.settings.livechat.organization_id):
            return False
        return True

    def active(self, organization: str | None) -> bool:
        return self._active(organization) is not None

    def require_active(self, organization: str | None) -> Tenant:
        """The tenant as stored now (never the process's recent copy); ``TenantInactive`` unless active."""
        return self.tokens.active(organization)

    def api(self, organization: str | None) -> LiveChatAPI:
        """The organization's ``LiveChatAPI``; ``TenantInactive`` when it cannot be acted for now."""
        tenant = self._active(organization) or self.tokens.active(organization)
        # A new bot (a re-provisioned tenant) makes a new client; the key holds no secret in the clear.
        secret = hashlib.blake2b((tenant.bot_secret or "").encode(), digest_size=8).hexdigest()
        key = (tenant.organization_id, tenant.bot_id, secret)
        api = self._apis.get(key)
        if api is None:
            for stale in [k for k in self._apis if k[0] == tenant.organization_id]:
                del self._apis[stale]  # its previous bot's: one client per organization at a time
            api = self._apis[key] = LiveChatAPI(self._client(tenant), tenant.bot_id)
        return api

    def _active(self, organization: str | None) -> Tenant | None:
        """The tenant if it is active, from this process's copy when that is under ``RECENT`` seconds old.

        Only an active tenant is kept: a copy that is stale can only be one that stopped being active (every
        API call reads the stored tenant again, and refuses one needing re-authorisation or uninstalled),
        never one that became active, whose replayed work must not be parked again.
        """
        if organization is None:
            return None
        now = time.monotonic()
        kept = self._recent.get(organization)
        if kept is not None and kept[0] > now:
            return kept[1]
        tenant = self.store.get(organization)
        if tenant is None or not tenant.active:
            self._recent.pop(organization, None)
            return None
        self._recent[organization] = (now + RECENT, tenant)
        return tenant

    # --- lifecycle ------------------------------------------------------------------------

    def provision(self, organization: str, deleted_bot: str | None = None) -> bool:
        """Provision a tenant (after its install, or when ``deleted_bot`` was its bot); True when it is active
        now (its parked work may run)."""
        tenant = self.store.get(organization)
        if tenant is None or tenant.status not in LIVE:
            log.info("organization %s is %s: not provisioned", organization, tenant.status if tenant else "unknown")
            return False
        if deleted_bot is not None and deleted_bot != tenant.bot_id:
            return False  # another bot of the license: nothing of ours to make again
        provisioned = install.provision(self._client(tenant), self.store, tenant)
        self._recent.pop(organization, None)  # its bot may be new: no copy of the old one
        return provisioned is not None and provisioned.active

    def clean_up(self, organization: str) -> None:
        """An uninstalled tenant's bot deleted and tokens revoked (best effort), then forgotten."""
        tenant = self.store.get(organization)
        if tenant is None or tenant.status is not Status.UNINSTALLED:
            return  # installed again meanwhile: nothing to undo
        plain = None
        if tenant.access_token:  # no refresh for a tenant that is gone: its token as it is
            lc = self.settings.livechat
            plain = LiveChatClient(LiveChatSettings(api_url=lc.api_url, api_version=lc.api_version,
                                                    access_token=tenant.access_token), timeout=self._timeout)
        install.clean_up(plain, self.accounts, self.store, tenant)
        if tenant.bot_id:
            self._bot_tokens.set(tenant.bot_id, "", 0.0)  # its cached bot token, gone

    def _client(self, tenant: Tenant) -> TenantClient:
        return TenantClient(self.settings.livechat, tenant, self.tokens, self.limiter, timeout=self._timeout,
                            token_cache=self._bot_tokens)

