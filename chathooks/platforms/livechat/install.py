"""An organization's installation lifecycle: provisioning it once installed, cleaning up once uninstalled."""

from __future__ import annotations

import hashlib
import logging

from chathooks.events import Delivery, Event, Kind
from chathooks.http import OutboundError
from chathooks.platforms.base import delivery
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.adapter import SOURCE
from chathooks.platforms.livechat.client import LiveChatClient
from chathooks.platforms.livechat.tenants import LIVE, Status, Tenant, TenantStore

BOT_NAME = "chathooks"
PROVISION, UNINSTALL = "provision", "uninstall"
APP_SOURCE = "livechat_app"  # what the install routes count and queue under, beside the chat webhooks' SOURCE

log = logging.getLogger(__name__)


def lifecycle_delivery(organization: str, step: str, occurrence: str, dedupe_ttl: int) -> Delivery:
    """The queued work of one lifecycle step; ``occurrence`` tells one install (or uninstall) from the next."""
    digest = hashlib.blake2b(occurrence.encode(), digest_size=8).hexdigest()
    event = Event(key=f"{SOURCE}:tenant:{organization}:{step}:{digest}", source=SOURCE, kind=Kind.TENANT,
                  organization=organization, raw={"step": step})
    found = delivery(APP_SOURCE, f"tenant_{step}", (organization, step, digest), [event], dedupe_ttl)
    assert found is not None
    return found


def provision(client: LiveChatClient, store: TenantStore, tenant: Tenant) -> Tenant | None:
    """Find or create the organization's bot, set it accepting chats, turn license webhooks on if they are off;
    then the tenant is active. Every step can run again: a retry after a crash repeats nothing.

    Returns the tenant, or None when it was uninstalled (or removed) meanwhile: then nothing is stored, and a
    bot made here is deleted again.
    """
    org = tenant.organization_id
    bots = {b["id"]: b for b in client.list_bots() if isinstance(b, dict) and b.get("id")}
    bot_id = tenant.bot_id
    if bot_id not in bots or not tenant.bot_secret:
        ours = next((b for b in bots.values() if b.get("name") == BOT_NAME), None)
        created = None
        if ours is not None:  # made by an earlier install (or an attempt that died before storing its secret)
            bot_id, secret = ours["id"], client.reset_bot_secret(ours["id"])
        else:
            created = client.create_bot(BOT_NAME)
            bot_id, secret = created["id"], created.get("secret")
        if store.transition(org, LIVE, bot_id=bot_id, bot_secret=secret) is None:
            if created is not None:
                _best_effort(f"delete bot {bot_id} of {org}, uninstalled meanwhile", lambda: client.delete_bot(bot_id))
            return None
        log.info("organization %s: bot %s", org, bot_id)
    if bot_id is None:
        raise OutboundError("livechat", "create_bot", "invalid_response", "no bot id")
    client.set_routing_status("accepting_chats", agent_id=bot_id)
    # A license that once disabled them keeps them off across re-installs.
    if not client.license_webhooks_enabled():
        client.enable_license_webhooks()
    return store.transition(org, LIVE, status=Status.ACTIVE, reason="")


def clean_up(client: LiveChatClient | None, accounts: AccountsClient, store: TenantStore,
             tenant: Tenant) -> Tenant | None:
    """After ``application_uninstalled``: delete the bot and revoke the tokens (best effort), then forget them.
    The record stays, ``uninstalled``, so a re-install finds it."""
    org = tenant.organization_id
    if client is not None and tenant.bot_id and store.status(org) is Status.UNINSTALLED:
        _best_effort(f"delete bot {tenant.bot_id} of {org}", lambda: client.delete_bot(tenant.bot_id or ""))
    revoke_tokens(accounts, tenant)  # the grant of that install: a re-install has a grant of its own
    return store.purge_secrets(tenant)


def revoke_tokens(accounts: AccountsClient, tenant: Tenant) -> bool:
    """Revoke the tenant's grant, best effort: its access token (which takes the refresh token with it), else
    its refresh token. Returns whether one was revoked."""
    for token in filter(None, (tenant.access_token, tenant.refresh_token)):
        if _best_effort(f"revoke a token of {tenant.organization_id}", lambda: accounts.revoke(token)):
            return True
    return False


def _best_effort(what: str, call) -> bool:  # type: ignore[no-untyped-def]
    try:
        call()
        return True
    except OutboundError as exc:
        log.warning("%s failed (left as it is): %s", what, exc)
        return False
