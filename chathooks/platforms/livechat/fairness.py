"""One organization's share of the calls to LiveChat (``CHATHOOKS_ORG_RATE``): a burst of one license never
spends another's budget, and ``too_many_requests`` pauses that organization only."""

from __future__ import annotations

import time

import redis

from chathooks.http import OutboundError
from chathooks.rate_limit import RateLimiter
from chathooks.settings import MarketplaceSettings

MAX_WAIT = 1.0  # a call over the organization's rate waits this long at most, else it is retried later
BACK_OFF = 5.0  # how long an organization pauses after too_many_requests that named no time


def limiter(market: MarketplaceSettings, client: redis.Redis, prefix: str) -> RateLimiter:
    """The buckets every organization's calls share, ``CHATHOOKS_ORG_RATE`` each."""
    return RateLimiter(client, f"{prefix}livechat:", market.org_rate)


class OrganizationRate:
    def __init__(self, limiter: RateLimiter, organization: str) -> None:
        self.limiter = limiter
        self.organization = organization

    def take(self, method: str) -> None:
        """Wait (up to ``MAX_WAIT``) for the organization's next call; else a transient ``rate_limited``."""
        wait = 0.0
        for _ in range(3):  # others of the organization may take the token waited for
            wait = self.limiter.wait(self.organization)
            if wait == 0:
                return
            if wait > MAX_WAIT:
                break
            time.sleep(wait)
        raise OutboundError("livechat", method, "rate_limited",
                            f"organization {self.organization} is over its rate (CHATHOOKS_ORG_RATE)",
                            transient=True, retry_after=wait)

    def refused(self, exc: OutboundError) -> None:
        """LiveChat said ``too_many_requests``: the organization pauses as long as it said (else ``BACK_OFF``)."""
        if exc.type == "too_many_requests":
            self.limiter.back_off(self.organization, exc.retry_after or BACK_OFF)
