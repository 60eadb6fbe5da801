"""B3's ceiling: the workers' Celery app and configuration with a delivery task that runs no handler.

It writes only what the real task writes of a delivery once its handlers are done
(``close_delivery``: its entry in the chat's story, its processed mark and counters, in one round
trip). Fed by the real ingress, it is the pipeline with handlers that cost nothing: the most B3 can
be on this machine, where the ingress and the load generator share the cores with the workers.
Run as ``celery -A bench.ceiling worker`` with the same flags as the real worker.
"""

from __future__ import annotations

from typing import Any

from chathooks.queue_message import PROCESS_DELIVERY
from workers.celery_app import ChathooksCelery
from workers.dispatch import close_delivery
from workers.runtime import runtime_for
from workers.tasks import through_redis_outages

app = ChathooksCelery()
app.finalize()  # registers the workers' shared tasks, theirs of this name too: replaced below
app.tasks.unregister(PROCESS_DELIVERY)


@app.task(name=PROCESS_DELIVERY, bind=True, shared=False)
def process_delivery(self, message: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """A delivery, closed as the real task closes it: its handlers are not run."""
    rt = runtime_for(self.app)

    def close() -> None:
        rt.journal.begin_delivery(message)
        close_delivery(message, rt)

    through_redis_outages(rt, close)
