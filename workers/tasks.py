"""Celery tasks: thin shells that hand normalised events to the dispatch table."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from chathooks.events import Delivery
from chathooks.queue_message import PROCESS_DELIVERY
from workers.dispatch import dispatch
from workers.runtime import runtime_for


@shared_task(name=PROCESS_DELIVERY, bind=True)
def process_delivery(self, message: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Handle one queued delivery (see ``Delivery.to_message``)."""
    dispatch(Delivery.events_of(message), runtime_for(self.app))
