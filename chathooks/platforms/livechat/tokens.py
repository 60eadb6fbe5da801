"""Tenants' access tokens kept fresh: refreshed before they run out, once at a time per organization.

The accounts server keeps 25 tokens per app and user and silently revokes the oldest, so
workers racing to refresh would revoke each other's tokens: a refresh runs under a lock per
organization, and whoever waited on it takes the token it stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import redis

from chathooks.http import OutboundError
from chathooks.platforms.livechat.accounts import AccountsClient, needs_reauth
from chathooks.platforms.livechat.tenants import LIVE, Status, Tenant, TenantStore, token_fields

log = logging.getLogger(__name__)

# Delete the lock only if it is still ours. KEYS: lock. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TenantInactive(OutboundError):
    """An organization that cannot be acted for now: not installed (yet), pending, needing re-authorisation,
    or uninstalled. Final: its work is parked in the dead-letter store until it is active."""

    def __init__(self, organization: str | None, reason: str) -> None:
        super().__init__("livechat", "tenant", f"tenant_{reason}",
                         f"organization {organization or '(none)'} is {reason.replace('_', ' ')}")
        self.organization = organization
        self.reason = reason

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return type(self), (self.organization, self.reason)


def inactive(organization: str | None, status: Status | None) -> TenantInactive:
    """Why an organization cannot be acted for, from its status (None: no such tenant)."""
    return TenantInactive(organization, "not_installed" if status is None else str(status))


class TenantTokens:
    """A tenant's current access token, refreshed when under a quarter of its lifetime remains."""

    def __init__(self, store: TenantStore, accounts: AccountsClient, client: redis.Redis, prefix: str, *,
                 clock: Callable[[], float] = time.time, lock_seconds: float = 15.0,
                 poll_seconds: float = 0.05) -> None:
        self.store = store
        self._accounts = accounts
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._lock_seconds = lock_seconds
        self._poll = poll_seconds
        self._release = client.register_script(_RELEASE)

    def active(self, organization: str | None) -> Tenant:
        """The tenant, if it may be acted for now; else TenantInactive saying why not."""
        tenant = self.store.get(organization) if organization else None
        if tenant is None or not tenant.active:
            raise inactive(organization, tenant.status if tenant else None)
        return tenant

    def current(self, organization: str) -> Tenant:
        """The tenant with an access token that is not about to expire (pending tenants too: provisioning)."""
        tenant = self.store.get(organization)
        if tenant is None or tenant.status not in LIVE:
            raise inactive(organization, tenant.status if tenant else None)
        if not tenant.access_token:  # an unreadable one (its key dropped) too: it must be authorised again
            raise TenantInactive(organization, "needs_reauth" if tenant.active else str(tenant.status))
        if tenant.needs_refresh(self._clock()):
            tenant = self.refresh(organization, tenant.access_token)
        return tenant

    def refresh(self, organization: str, stale: str | None) -> Tenant:
        """A tenant whose access token is not ``stale``: refreshed here, or by whoever held the lock meanwhile."""
        lock, owner = f"{self._prefix}tenant:{organization}:refreshing", uuid.uuid4().hex
        deadline = self._clock() + self._lock_seconds
        while not self._redis.set(lock, owner, nx=True, px=int(self._lock_seconds * 1000)):
            tenant = self.store.get(organization)
            if tenant is not None and tenant.status not in LIVE:
                raise inactive(organization, tenant.status)  # the holder's refresh was refused
            if tenant is not None and tenant.access_token and tenant.access_token != stale:
                return tenant  # refreshed by the lock's holder
            if self._clock() > deadline:
                raise OutboundError("livechat_accounts", "refresh_token", "busy",
                                    f"another process is refreshing {organization}'s token", transient=True)
            time.sleep(self._poll)
        try:
            return self._refresh_locked(organization, stale)
        finally:
            self._release(keys=[lock], args=[owner])

    def _refresh_locked(self, organization: str, stale: str | None) -> Tenant:
        tenant = self.store.get(organization)
        if tenant is None or tenant.status not in LIVE:  # gone, or already refused: not asked again
            raise inactive(organization, tenant.status if tenant else None)
        if tenant.access_token and tenant.access_token != stale:
            return tenant
        if not tenant.refresh_token:
            raise self._needs_reauth(organization, "no refresh token")
        try:
            grant = self._accounts.refresh(tenant.refresh_token)
        except OutboundError as exc:
            if needs_reauth(exc):
                raise self._needs_reauth(organization, exc.type) from None
            raise
        fields = token_fields(grant, self._clock())
        if tenant.region:
            fields.pop("region", None)  # as learned (a misdirected_request), not reset to the token's prefix
        refreshed = self.store.transition(organization, LIVE, **fields)
        if refreshed is None:  # uninstalled or removed while the accounts server answered
            raise inactive(organization, self.store.status(organization))
        log.info("refreshed the access token of organization %s", organization)
        return refreshed

    def _needs_reauth(self, organization: str, reason: str) -> TenantInactive:
        if self.store.transition(organization, LIVE, status=Status.NEEDS_REAUTH, reason=reason) is None:
            return inactive(organization, self.store.status(organization))
        log.warning("organization %s needs to authorise the app again: %s", organization, reason)
        return TenantInactive(organization, "needs_reauth")
