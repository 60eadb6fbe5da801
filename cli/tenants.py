"""``chathooks tenants``: the organizations that installed the app (SPEC §11). Never prints a token.

Each command returns its exit code: 0 done, 1 no such tenant.
"""

from __future__ import annotations

from typing import TextIO

from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.install import revoke_tokens
from chathooks.platforms.livechat.tenants import Tenant, TenantStore
from cli.output import dump, table, when

_COLUMNS = ("ORGANIZATION", "STATUS", "LICENSE", "REGION", "BOT", "TOKEN EXPIRES", "UPDATED")


def list_tenants(store: TenantStore, as_json: bool, out: TextIO) -> int:
    tenants = store.all()
    if as_json:
        dump([t.public() for t in tenants], out)
    elif tenants:
        table(_COLUMNS, [_row(t) for t in tenants], out)
    else:
        out.write("no tenants\n")
    return 0


def show(store: TenantStore, organization: str, as_json: bool, out: TextIO, err: TextIO) -> int:
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


def remove(store: TenantStore, accounts: AccountsClient, organization: str, out: TextIO, err: TextIO) -> int:
    """Delete the tenant's record, revoking its tokens first (best effort)."""
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


def _row(tenant: Tenant) -> tuple[str, ...]:
    return (tenant.organization_id, str(tenant.status), tenant.license_id or "-", tenant.region or "-",
            tenant.bot_id or "-", when(tenant.expires_at) if tenant.expires_at else "-",
            when(tenant.updated_at) if tenant.updated_at else "-")


def _not_found(organization: str, err: TextIO) -> int:
    err.write(f"chathooks: no tenant {organization!r}\n")
    return 1
