"""The platforms chathooks acts through, by the ``source`` their events carry: one row each.

A row says whether the settings hold the platform's credentials (without them it is dry-run:
its actions are recorded, not sent) and how to build its ``ChatAPI``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from chathooks.http import Timeout
from chathooks.platforms.base import ChatAPI
from chathooks.platforms.lhc.api import LhcAPI
from chathooks.platforms.livechat.api import LiveChatAPI
from chathooks.platforms.livechat_v2.api import LiveChatV2API
from chathooks.rules import Rules
from chathooks.settings import Settings


# The source of what was kept before events named theirs (chathooks served LiveChat v3 alone then).
DEFAULT_SOURCE = LiveChatAPI.source


@dataclass(frozen=True)
class Platform:
    source: str
    has_credentials: Callable[[Settings], bool]
    api: Callable[[Settings, redis.Redis, Timeout, Rules], ChatAPI]


def _livechat(settings: Settings) -> bool:
    # Multi-license credentials count too: each organization's are its tenant's (SPEC §11).
    return settings.livechat.has_credentials or settings.marketplace is not None


def _livechat_v2(settings: Settings) -> bool:
    return settings.livechat.has_credentials  # legacy webhooks name a license, not an organization: static only


PLATFORMS: dict[str, Platform] = {p.source: p for p in (
    Platform(LiveChatAPI.source, _livechat, LiveChatAPI.build),
    Platform(LiveChatV2API.source, _livechat_v2, LiveChatV2API.build),
    Platform(LhcAPI.source, lambda settings: settings.lhc is not None, LhcAPI.build),
)}
