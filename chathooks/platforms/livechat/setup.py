"""``chathooks livechat setup``: register what the automations need on a LiveChat license, idempotently."""

from __future__ import annotations

from typing import TextIO

from chathooks.platforms.livechat.adapter import ACTIONS as HANDLED
from chathooks.platforms.livechat.client import LiveChatClient
from chathooks.settings import ConfigError, Settings

ACTIONS = tuple(HANDLED)  # the webhooks the automations consume
BOT_NAME = "chathooks"


def setup(settings: Settings, url: str, out: TextIO, webhook_type: str = "license",
          client: LiveChatClient | None = None) -> str:
    """Register webhooks, ensure a bot that accepts chats, enable license webhooks; returns the bot id."""
    owner = settings.livechat.client_id
    if not settings.livechat.has_credentials:
        raise ConfigError("LIVECHAT_ACCOUNT_ID and LIVECHAT_PAT (or LIVECHAT_ACCESS_TOKEN) are required for setup")
    if not owner:
        raise ConfigError("LIVECHAT_CLIENT_ID (the app's client id, owner of the webhooks) is required for setup")
    if not settings.webhook_secrets:
        raise ConfigError("LIVECHAT_WEBHOOK_SECRETS is required: its first secret is registered with each webhook")
    lc = client or LiveChatClient(settings.livechat)

    existing = {(w.get("action"), w.get("url"), w.get("type")) for w in lc.list_webhooks(owner)}
    for action in ACTIONS:
        if (action, url, webhook_type) in existing:
            print(f"  webhook {action:<26} already registered", file=out)
            continue
        webhook_id = lc.register_webhook(action, url, settings.webhook_secrets[0], owner, type=webhook_type,
                                         description="chathooks")
        print(f"  webhook {action:<26} registered ({webhook_id})", file=out)

    bots = {b["id"]: b for b in lc.list_bots() if b.get("id")}
    bot_id = settings.livechat.bot_id if settings.livechat.bot_id in bots else next(iter(bots), None)
    if bot_id is None:
        created = lc.create_bot(BOT_NAME, owner)
        bot_id = created["id"]
        print(f"  bot created: LIVECHAT_BOT_ID={bot_id}", file=out)
        print(f"  its secret (for v3.6 bot tokens) — store it as LIVECHAT_BOT_SECRET: {created.get('secret')}",
              file=out)
    else:
        print(f"  bot {bot_id} exists", file=out)
    lc.set_routing_status("accepting_chats", agent_id=bot_id)
    print(f"  bot {bot_id} set to accepting_chats", file=out)
    lc.enable_license_webhooks(owner)
    print("  license webhooks enabled", file=out)
    return bot_id
