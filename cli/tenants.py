"""``chathooks tenants``: the organizations that installed the app (SPEC §11). Never prints a token.

Each command returns its exit code: 0 done, 1 no such tenant.
"""

from __future__ import annotations

from typing import Any, TextIO

from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.install import revoke_tokens
from chathooks.platforms.livechat.tenants import TenantStore
from chathooks.settings import Settings
from cli.output import dump, table, when

Shown = dict[str, Any]  # a tenant as an operator sees it (``Tenant.public``)

_COLUMNS = ("ORGANIZATION", "STATUS", "LICENSE", "REGION", "BOT", "TOKEN EXPIRES", "UPDATED")


def static_tenant(settings: Settings) -> Shown | None:
    """The organization of the environment's single-license credentials, one more tenant beside the installed
    ones (SPEC §11); None without them."""
    lc = settings.livechat
    if not (lc.has_credentials and lc.organization_id):
        return None
    return {"organization_id": lc.organization_id, "status": "static", "license_id": None,
            "region": None, "bot_id": lc.bot_id, "expires_at": None, "updated_at": None,
            "configured_by": "environment (LIVECHAT_PAT or LIVECHAT_ACCESS_TOKEN)"}


def list_tenants(store: TenantStore, as_json: bool, out: TextIO, static: Shown | None = None) -> int:
    tenants = [*([static] if static else []), *(t.public() for t in store.all())]
    if as_json:
        dump(tenants, out)
    elif tenants:
        table(_COLUMNS, [_row(t) for t in tenants], out)
    else:
        out.write("no tenants\n")
    return 0


def show(store: TenantStore, organization: str, as_json: bool, out: TextIO, err: TextIO,
         static: Shown | None = None) -> int:
    shown = _if_static(static, organization)
    if shown is None:
        tenant = store.get(organization)
        if tenant is None:
            return _not_found(organization, err)
        shown = tenant.public()
    if as_json:
        dump(shown, out)
        return 0
    for name, value in shown.items():
        if name.endswith("_at") and value is not None:
            value = when(value)
        out.write(f"{name + ':':<17}{'-' if value in (None, '') else value}\n")
    return 0


def remove(store: TenantStore, accounts: AccountsClient, organization: str, out: TextIO, err: TextIO,
           static: Shown | None = None) -> int:
    """Delete the tenant's record, revoking its tokens first (best effort)."""
    if _if_static(static, organization) is not None:
        err.write(f"chathooks: {organization} is configured by the environment, not installed: unset its "
                  "LIVECHAT_PAT (or LIVECHAT_ACCESS_TOKEN) to stop serving it\n")
        return 1
    tenant = store.get(organization)
    if tenant is None:
        return _not_found(organization, err)
    revoked = revoke_tokens(accounts, tenant)
    store.remove(organization)
    out.write(f"removed {organization} (its tokens {'revoked' if revoked else 'could not be revoked: see the log'})\n")
    return 0


def rotate(store: TenantStore, out: TextIO) -> int:
    """Re-encrypt every tenant's secrets with the first CHATHOOKS_SECRET_KEY (after putting a new one first)."""
    seen, unreadable = store.rotate()
    out.write(f"{seen} tenant(s) re-encrypted with the first key\n")
    if unreadable:
        out.write(f"{unreadable} of them hold secrets no configured key reads (left as they are: is an old key "
                  "missing from CHATHOOKS_SECRET_KEY?)\n")
        return 1
    return 0


def _if_static(static: Shown | None, organization: str) -> Shown | None:
    """The environment's organization, if it is ``organization``."""
    return static if static is not None and static["organization_id"] == organization else None


def _row(shown: Shown) -> tuple[str, ...]:
    return (shown["organization_id"], shown["status"], *(shown[k] or "-" for k in ("license_id", "region", "bot_id")),
            *(when(shown[k]) if shown[k] else "-" for k in ("expires_at", "updated_at")))


def _not_found(organization: str, err: TextIO) -> int:
    err.write(f"chathooks: no tenant {organization!r}\n")
    return 1
