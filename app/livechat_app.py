"""Installing chathooks as a LiveChat Marketplace app (SPEC §11): the authorization-code flow and App Webhooks.

``GET /livechat/install`` sends the installing user to the accounts server; ``GET /livechat/callback``
(the Direct installation URL) exchanges the code, stores the tenant and queues its provisioning;
``POST /livechat/app-webhooks/<token>`` takes ``application_installed`` and ``application_uninstalled``.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
from typing import Any

import redis
from flask import Blueprint, Response, redirect, request

from app.ingress import Ingress, Rejection, current_ingress, read_json_object, unavailable
from chathooks.http import OutboundError
from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.install import APP_SOURCE, PROVISION, UNINSTALL, lifecycle_delivery
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.queue import QueueUnavailable
from chathooks.settings import MarketplaceSettings, Settings

bp = Blueprint(APP_SOURCE, __name__)
log = logging.getLogger("chathooks.install")

STATE_TTL = 600  # seconds an install started here may take to come back


def check(settings: Settings) -> None:
    """Say at start what multi-license mode lacks that LiveChat cannot tell us about later."""
    if settings.marketplace is not None and not settings.marketplace.app_webhook_token:
        log.warning("multi-license mode without LIVECHAT_APP_WEBHOOK_TOKEN: every App Webhook is answered 404, so "
                    "no uninstall is heard of; set it and register %s/livechat/app-webhooks/<token>",
                    settings.marketplace.public_url)


@bp.get("/livechat/install")
def install() -> Response:
    ingress, _, _, accounts = _mode()
    state = secrets.token_urlsafe(24)
    try:
        ingress.redis.set(_state_key(ingress, state), "1", ex=STATE_TTL)
    except redis.RedisError as exc:
        raise unavailable("state store unavailable; retry later") from exc
    return redirect(accounts.authorize_url(state), code=302)


@bp.get("/livechat/callback")
def callback() -> tuple[str, int, dict[str, str]]:
    ingress, _, tenants, accounts = _mode()
    code, state = request.args.get("code", "").strip(), request.args.get("state", "").strip()
    if not code:
        return _page(400, "Not installed", "The request carries no authorization code.")
    # A state is ours only if /livechat/install made it; the Marketplace's own installs send none.
    if state:
        try:
            known = ingress.redis.getdel(_state_key(ingress, state))
        except redis.RedisError:
            return _page(503, "Not installed yet", "chathooks cannot check this installation link just now. "
                                                   "Reload this page in a minute.")
        if known is None:
            return _page(400, "Not installed", "This installation link is unknown, expired or already used. "
                                               "Start the installation again.")
    try:
        grant = accounts.exchange(code)
    except OutboundError as exc:
        log.warning("install: the code exchange failed: %s", exc)
        return _page(502, "Not installed", f"LiveChat's accounts server refused or failed ({exc.type}). "
                                           "Start the installation again.")
    org = grant["organization_id"]
    try:
        tenants.authorised(grant)
        ingress.queue(lifecycle_delivery(org, PROVISION, code, ingress.settings.dedupe_ttl_seconds))
    except (redis.RedisError, QueueUnavailable, Rejection):
        log.error("install of organization %s: stored or queued only in part", org)
        return _page(503, "Not installed yet", "chathooks could not record the installation just now. "
                                               "Start the installation again in a minute.")
    log.info("organization %s installed the app; provisioning queued", org)
    return _page(200, "Installed", f"chathooks is installed for organization {org}. Its bot is being set up "
                                   "and your chats will be automated within a minute. You can close this page.")


@bp.post("/livechat/app-webhooks/<token>")
def app_webhook(token: str) -> dict[str, str]:
    ingress, market, tenants, _ = _mode()
    expected = market.app_webhook_token
    # App Webhooks carry no secret: the unguessable path is the only proof they are LiveChat's.
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Rejection(404, "bad_token", "not found")
    body = read_json_object(request, ingress.settings.ingress_max_bytes)
    event, org, license_id = _app_event(body)
    try:
        if org is None and license_id is not None:  # older App Webhooks name only the license
            org = tenants.organization_of(license_id)
        if event == "application_installed" and org:
            tenants.installed(org, license_id)
            ingress.metrics.count(f"received:{APP_SOURCE}")
        elif event == "application_uninstalled" and org and (tenant := tenants.get(org)) is not None:
            tenants.update(org, status=Status.UNINSTALLED)
            # One install's uninstall (LiveChat's retries included) is one clean-up; the next install's is another.
            # Queued, it is counted as received there.
            occurrence = f"{tenant.installed_at}:{body.get('date')}"
            ingress.queue(lifecycle_delivery(org, UNINSTALL, occurrence, ingress.settings.dedupe_ttl_seconds))
        else:
            ingress.metrics.count(f"received:{APP_SOURCE}", f"ignored:{APP_SOURCE}")
            return {"status": "ignored"}
    except redis.RedisError as exc:
        raise unavailable("tenant store unavailable; retry later") from exc
    log.info("app webhook %s for organization %s", event, org)
    return {"status": "handled"}


def _app_event(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """The event, organization and license of an App Webhook (camelCase; older ones lack organizationID)."""
    errors: dict[str, list[str]] = {}
    event, org, license_id = body.get("event"), body.get("organizationID"), body.get("licenseID")
    if not isinstance(event, str) or not event:
        errors["event"] = ["a non-empty string is required"]
    if org is not None and (not isinstance(org, str) or not org):
        errors["organizationID"] = ["must be a non-empty string"]
    if license_id is not None and (isinstance(license_id, bool) or not isinstance(license_id, (int, str))):
        errors["licenseID"] = ["must be a number"]
    if errors:
        raise Rejection(400, "invalid_payload", "invalid app webhook", errors)
    return event, org, None if license_id is None else str(license_id)


def _mode() -> tuple[Ingress, MarketplaceSettings, TenantStore, AccountsClient]:
    ingress = current_ingress()
    market = ingress.settings.marketplace
    if market is None or ingress.tenants is None or ingress.accounts is None:
        raise Rejection(404, "not_configured", "multi-license mode is off: set LIVECHAT_CLIENT_SECRET, "
                                               "LIVECHAT_CLIENT_ID, CHATHOOKS_PUBLIC_URL and CHATHOOKS_SECRET_KEY")
    return ingress, market, ingress.tenants, ingress.accounts


def _state_key(ingress: Ingress, state: str) -> str:
    return f"{ingress.keys.prefix}livechat:install-state:{state}"


def _page(status: int, title: str, text: str) -> tuple[str, int, dict[str, str]]:
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>chathooks: {html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></html>\n")
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    return body, status, headers | ({"Retry-After": "5"} if status == 503 else {})


def openapi(settings: Settings) -> dict[str, Any]:
    """These routes' part of ``/openapi.json``."""
    from app.openapi import json_response, ref

    page = {"text/html": {"schema": {"type": "string"}}}
    off = "multi-license mode is off (LIVECHAT_CLIENT_SECRET unset)"
    app_event = {
        "type": "object", "required": ["event"],
        "description": "A LiveChat App Webhook (camelCase). Unknown fields are accepted and ignored.",
        "properties": {"event": {"type": "string", "minLength": 1}, "organizationID": {"type": "string"},
                       "licenseID": {"description": "the license number"},
                       "clientID": {"type": "string"}, "date": {"type": "string"}},
    }
    handled = {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string", "enum": ["handled", "ignored"]}}}
    paths = {
        "/livechat/install": {"get": {
            "summary": "start installing the app on a license: redirects to the accounts server",
            "operationId": "livechatInstall",
            "responses": {"302": {"description": "to LIVECHAT_ACCOUNTS_URL, with a one-time state"},
                          "404": json_response(off, ref("Error")),
                          "503": json_response("Redis unreachable", ref("Error"))}}},
        "/livechat/callback": {"get": {
            "summary": "the Direct installation URL: exchanges the code, stores the tenant, queues provisioning",
            "operationId": "livechatCallback",
            "parameters": [{"name": "code", "in": "query", "schema": {"type": "string"}},
                           {"name": "state", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "installed", "content": page},
                          "400": {"description": "no code, or a state that is unknown or used", "content": page},
                          "404": json_response(off, ref("Error")),
                          "502": {"description": "the accounts server failed or refused the code", "content": page},
                          "503": {"description": "Redis or the broker unreachable", "content": page}}}},
        "/livechat/app-webhooks/{token}": {"post": {
            "summary": "App Webhooks: application_installed, application_uninstalled (others ignored)",
            "operationId": "livechatAppWebhook",
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "LIVECHAT_APP_WEBHOOK_TOKEN"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("AppWebhook")}}},
            "responses": {"200": json_response("handled, or an event with nothing to do: ignored", handled),
                          "400": json_response("not a JSON object, or invalid fields", ref("Invalid")),
                          "404": json_response("a wrong path token, or " + off, ref("Error")),
                          "413": json_response("body too large", ref("Error")),
                          "415": json_response("Content-Type is not JSON", ref("Error")),
                          "503": json_response("Redis or the broker unreachable", ref("Error"))}}},
    }
    return {"paths": paths, "schemas": {"AppWebhook": app_event}}
