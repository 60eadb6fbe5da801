"""The queues the ingress and the workers both declare on RabbitMQ."""

from __future__ import annotations

from chathooks.amqp import dead_queues, task_queues
from tests.conftest import make_settings


def test_timers_first_each_a_quorum_queue_with_a_delivery_limit_dead_lettering_into_its_own_dead_queue():
    settings = make_settings(CHATHOOKS_AMQP_DELIVERY_LIMIT="3")
    scheduled, events = task_queues(settings)
    assert (scheduled.name, events.name) == (settings.scheduled_queue, settings.queue)
    for queue in (scheduled, events):
        assert queue.durable and queue.routing_key == queue.name and queue.exchange.name == queue.name
        assert queue.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": 3, "x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": f"{queue.name}.dead",
                                         "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def test_the_dead_queues_are_quorum_queues_that_dead_letter_nowhere():
    settings = make_settings()
    assert [(q.name, q.queue_arguments) for q in dead_queues(settings)] == [
        (f"{settings.scheduled_queue}.dead", {"x-queue-type": "quorum"}),
        (f"{settings.queue}.dead", {"x-queue-type": "quorum"})]

