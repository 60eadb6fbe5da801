"""An organization's installation: provisioned once installed (its parked work then replayed), cleaned up
once uninstalled."""

from __future__ import annotations

import logging

from chathooks.events import Event
from workers.dead_letters import Filter
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def lifecycle(event: Event, rt: Runtime) -> None:
    tenancy, org, step = rt.outbound.tenancy, event.organization, event.raw.get("step")
    if tenancy is None or org is None or not tenancy.serves(event.source, org):
        log.warning("organization %s: %s is for a tenant, and this one is not (single license): nothing done",
                    org, step if "bot_deleted" not in event.raw else f"bot {event.raw['bot_deleted']} deleted")
        return
    if step == "uninstall":
        tenancy.clean_up(org)
    elif step == "provision" and tenancy.provision(org, deleted_bot=event.raw.get("bot_deleted")):
        replay_parked(rt, org)


def replay_parked(rt: Runtime, organization: str) -> int:
    """Put what was parked for ``organization`` back in the pipeline (it is active now); returns how much."""
    parked = Filter(organization=organization, parked=True)
    replayed = [item for item in rt.dead_letters.list(parked) if rt.dead_letters.replay(item["id"], parked)]
    if replayed:
        log.info("organization %s is active: %d parked item(s) replayed", organization, len(replayed))
    return len(replayed)
