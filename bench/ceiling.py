"""B3's ceiling: the workers' Celery app and configuration with a delivery task that runs no handler.

It writes only what the real task's flush writes of a delivery (its entry in the chat's story, its
processed mark and counters), in one round trip. Fed by the real ingress, it is the pipeline with
handlers that cost nothing: the most B3 can be on this machine, where the ingress and the load
generator share the cores with the workers.
Run as ``celery -A bench.ceiling worker`` with the same flags as the real worker.
"""

from __future__ import annotations

from typing import Any

from chathooks.queue_message import PROCESS_DELIVERY
from workers.celery_app import ChathooksCelery
from workers.runtime import runtime_for

app = ChathooksCelery()
app.finalize()  # registers the workers' shared tasks, theirs of this name too: replaced below
app.tasks.unregister(PROCESS_DELIVERY)


@app.task(name=PROCESS_DELIVERY, bind=True, shared=False)
def process_delivery(self, message: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """A delivery, counted processed: its handlers are not run."""
    journal = runtime_for(self.app).journal
    journal.begin_delivery(message)
    journal.processed(message["id"], message["source"])
    journal.flush()
