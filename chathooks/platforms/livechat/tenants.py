"""The tenant store: one record per LiveChat organization that installed the app (SPEC §11).

A record is a Redis hash under ``<prefix>tenant:<organization_id>``, with the set of known
organizations beside it. Access and refresh tokens and the bot's secret are encrypted at rest
with CHATHOOKS_SECRET_KEY (Fernet; the first key encrypts, every key decrypts, so keys rotate);
the rest is plain, for operators. A ``Tenant`` never shows its secrets in a repr or a log line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

import redis
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class Status(StrEnum):
    PENDING = "pending"  # known from application_installed or a callback, not yet provisioned
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"  # its grant was refused: nothing is done for it until it is installed again
    UNINSTALLED = "uninstalled"


ENCRYPTED = ("access_token", "refresh_token", "bot_secret")
LIVE = (Status.PENDING, Status.ACTIVE)  # where the workers' own writes may land: never over an uninstall

# Change an existing tenant only if its status is one of ARGV[1] (comma-separated) and, when ARGV[2] is not
# empty, its installed_at is still ARGV[2]. ARGV[3]: how many field/value pairs follow; then the fields to
# delete. Returns the tenant as stored, or nil when it is not as expected.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return nil end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == status then allowed = true end end
if not allowed then return nil end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'installed_at') ~= ARGV[2] then return nil end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[4 + 2 * i], ARGV[5 + 2 * i]) end
for i = 4 + 2 * n, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class Tenant:
    organization_id: str
    status: Status = Status.PENDING
    license_id: str | None = None
    account_id: str | None = None  # the agent who authorised: the tokens are theirs
    region: str | None = None  # the access token's data-centre prefix (``dal``, ``fra``, ``fra-a``)
    scope: str | None = None  # as granted, comma-separated
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    lifetime: float | None = None  # the access token's ``expires_in`` when issued
    bot_id: str | None = None
    bot_secret: str | None = field(default=None, repr=False)
    reason: str | None = None  # why it needs re-authorisation
    installed_at: float | None = None
    updated_at: float | None = None

    @property
    def active(self) -> bool:
        return self.status is Status.ACTIVE

    def needs_refresh(self, now: float) -> bool:
        """Whether under a quarter of the access token's lifetime remains."""
        if self.expires_at is None:
            return False
        return self.expires_at - now < (self.lifetime or 0) / 4

    def public(self) -> dict[str, Any]:
        """What an operator may see: everything but the secrets (whose presence is told)."""
        shown = {k: v for k, v in asdict(self).items() if k not in ENCRYPTED}
        shown["status"] = str(self.status)
        shown["has_tokens"] = bool(self.access_token and self.refresh_token)
        shown["has_bot_secret"] = bool(self.bot_secret)
        return shown


_FLOATS = {"expires_at", "lifetime", "installed_at", "updated_at"}
_NAMES = {f.name for f in fields(Tenant)}


class TenantStore:
    def __init__(self, client: redis.Redis, prefix: str, secret_keys: Iterable[str],
                 clock: Any = time.time) -> None:
        keys = [Fernet(k) for k in secret_keys]
        if not keys:
            raise ValueError("the tenant store needs at least one CHATHOOKS_SECRET_KEY")
        self._redis = client
        self._prefix = prefix
        self._fernet = MultiFernet(keys)
        self._clock = clock
        self.index = f"{prefix}tenants"
        self._transition = client.register_script(_TRANSITION)

    def key(self, organization_id: str) -> str:
        return f"{self._prefix}tenant:{organization_id}"

    # --- reads ----------------------------------------------------------------------------

    def get(self, organization_id: str) -> Tenant | None:
        raw = self._redis.hgetall(self.key(organization_id))
        return self._load(organization_id, raw) if raw else None

    def status(self, organization_id: str) -> Status | None:
        raw = self._redis.hget(self.key(organization_id), "status")
        return Status(raw.decode()) if raw else None

    def all(self) -> list[Tenant]:
        """Every tenant, by organization id."""
        orgs = sorted(m.decode() for m in self._redis.smembers(self.index))
        with self._redis.pipeline(transaction=False) as pipe:
            for org in orgs:
                pipe.hgetall(self.key(org))
            raws = pipe.execute()
        return [self._load(org, raw) for org, raw in zip(orgs, raws) if raw]

    # --- writes ---------------------------------------------------------------------------

    def organization_of(self, license_id: str) -> str | None:
        """The organization a license number was installed as (older App Webhooks name only the license)."""
        raw = self._redis.get(self._license_key(license_id))
        return raw.decode() if raw else None

    def _license_key(self, license_id: str) -> str:
        return f"{self._prefix}tenant-license:{license_id}"

    def installed(self, organization_id: str, license_id: str | None) -> Tenant:
        """``application_installed``: a new or uninstalled tenant becomes pending; the license id is kept."""
        if license_id:
            self._redis.set(self._license_key(license_id), organization_id)
        tenant = self.get(organization_id)
        changes: dict[str, Any] = {"license_id": license_id} if license_id else {}
        if tenant is None or tenant.status is Status.UNINSTALLED:
            changes.update(status=Status.PENDING, installed_at=self._clock())
        return self.update(organization_id, **changes)

    def authorised(self, grant: Mapping[str, Any]) -> Tenant:
        """A token grant from the install callback: the tenant is pending until provisioned."""
        now = self._clock()
        tenant = self.get(grant["organization_id"])
        return self.update(
            grant["organization_id"], status=Status.PENDING, reason="", account_id=grant.get("account_id"),
            installed_at=now if tenant is None or tenant.status is Status.UNINSTALLED else tenant.installed_at,
            **token_fields(grant, now),
        )

    def update(self, organization_id: str, **changes: Any) -> Tenant:
        """Set fields (None or "" removes one); returns the tenant as stored."""
        changes["updated_at"] = self._clock()
        unknown = set(changes) - _NAMES
        if unknown:
            raise ValueError(f"not tenant fields: {', '.join(sorted(unknown))}")
        key = self.key(organization_id)
        present = {k: self._dump(k, v) for k, v in changes.items() if v not in (None, "")}
        absent = [k for k, v in changes.items() if v in (None, "")]
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"organization_id": organization_id, **present})
            if absent:
                pipe.hdel(key, *absent)
            pipe.sadd(self.index, organization_id)
            pipe.hgetall(key)
            raw = pipe.execute()[-1]
        return self._load(organization_id, raw)

    def transition(self, organization_id: str, allowed: Iterable[Status], *, installed_at: float | None = None,
                   **changes: Any) -> Tenant | None:
        """Set fields, atomically, only on a tenant that exists, is in one of the ``allowed`` statuses and (when
        given) is still the install of ``installed_at``; returns it as stored, or None when it was not so.

        Every write made after a slow call (to LiveChat or the accounts server) goes through here, so that an
        uninstall, a re-install or a removal that came meanwhile is never written over.
        """
        changes["updated_at"] = self._clock()
        present = {k: self._dump(k, v) for k, v in changes.items() if v not in (None, "")}
        absent = [k for k, v in changes.items() if v in (None, "")]
        args = [",".join(allowed), "" if installed_at is None else str(installed_at), len(present),
                *(x for kv in present.items() for x in kv), *absent]
        raw = self._transition(keys=[self.key(organization_id)], args=args)
        if not raw:
            return None
        return self._load(organization_id, dict(zip(raw[::2], raw[1::2])))

    def purge_secrets(self, tenant: Tenant) -> Tenant | None:
        """Forget an uninstalled tenant's tokens and bot; the record stays. None (nothing done) when it was
        installed again meanwhile."""
        return self.transition(tenant.organization_id, (Status.UNINSTALLED,), installed_at=tenant.installed_at,
                               access_token=None, refresh_token=None, expires_at=None, lifetime=None, bot_id=None,
                               bot_secret=None)

    def remove(self, organization_id: str) -> bool:
        license_id = self._redis.hget(self.key(organization_id), "license_id")
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key(organization_id))
            pipe.srem(self.index, organization_id)
            if license_id:
                pipe.delete(self._license_key(license_id.decode()))
            return bool(pipe.execute()[0])

    def rotate(self) -> tuple[int, int]:
        """Re-encrypt every tenant's secrets with the first key (after putting a new key first).

        Returns (tenants looked at, tenants with a secret no configured key reads). Those secrets are left as
        they are, so running it without the old key destroys nothing; a write that lands meanwhile (a refresh)
        is never overwritten.
        """
        seen = unreadable = 0
        for org in sorted(m.decode() for m in self._redis.smembers(self.index)):
            seen += 1
            unreadable += self._rotate_one(self.key(org))
        return seen, unreadable

    def _rotate_one(self, key: str) -> bool:
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    stored = dict(zip(ENCRYPTED, pipe.hmget(key, ENCRYPTED)))
                    rotated, unreadable = {}, False
                    for name, value in stored.items():
                        if value is None:
                            continue
                        try:
                            rotated[name] = self._fernet.rotate(value).decode("ascii")
                        except InvalidToken:
                            unreadable = True
                    pipe.multi()
                    if rotated:
                        pipe.hset(key, mapping=rotated)
                    pipe.execute()
                    return unreadable
                except redis.WatchError:
                    continue  # written meanwhile: rotate what is there now

    # --- encoding -------------------------------------------------------------------------

    def seal(self, text: str) -> str:
        """``text`` encrypted with the first CHATHOOKS_SECRET_KEY."""
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def unseal(self, sealed: str) -> str | None:
        """What ``seal`` sealed; None when no configured key opens it (a key dropped from the list)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None

    def _dump(self, name: str, value: Any) -> str:
        return self.seal(str(value)) if name in ENCRYPTED else str(value)

    def _load(self, organization_id: str, raw: Mapping[bytes, bytes]) -> Tenant:
        values: dict[str, Any] = {}
        for k, v in raw.items():
            name, text = k.decode(), v.decode()
            if name not in _NAMES:
                continue
            if name in ENCRYPTED:
                values[name] = self.unseal(text)  # unreadable: as if absent (the tenant must authorise again)
            elif name in _FLOATS:
                values[name] = float(text)
            else:
                values[name] = text
        values["organization_id"] = organization_id
        values["status"] = Status(values.get("status", Status.PENDING))
        return Tenant(**values)


def token_fields(grant: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A token response's fields as a tenant keeps them (the refresh token only when one is given)."""
    access = str(grant["access_token"])
    region, sep, _ = access.partition(":")
    lifetime = float(grant.get("expires_in") or 28800)
    values = {"access_token": access, "region": region if sep else None, "expires_at": now + lifetime,
              "lifetime": lifetime, "scope": grant.get("scope")}
    if grant.get("refresh_token"):
        values["refresh_token"] = grant["refresh_token"]
    return values


