"""A service's consumer (``create=False``) binds to the durable the admin provisioned:
on a real nats-server it waits while that durable is missing or lacks one of its
subjects, and handles the events waiting for it once it is provisioned."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.messaging import (
    ConsumerSettings,
    EventConsumer,
    JetStream,
    provision_consumers,
    service_consumers,
)
from tests.helpers import eventually
from tests.ptkit.test_consumer import (
    DURABLE,
    engine,
    order_policies,
    orders_confirmed,
    place_orders,
    publish,
    publisher,
    running,
    schedule_confirmed,
)

__all__ = ["engine", "publisher"]  # fixtures

WAITING = "consumer not provisioned, waiting"


async def test_a_service_consumer_waits_for_its_durable_then_handles_what_waited(
    engine: AsyncEngine, publisher: JetStream, caplog: pytest.LogCaptureFixture
) -> None:
    [order_id] = await place_orders(engine, 1)
    policies = order_policies(engine)
    settings = ConsumerSettings()
    consumer = EventConsumer(
        publisher, DURABLE, policies.subjects, policies, settings, create=False
    )
    stream = publisher.stream.name

    async def seen(times: int) -> bool:
        """The consumer said ``times`` times that its durable is not there."""
        said = [r for r in caplog.records if r.getMessage() == WAITING]
        return len(said) >= times

    with caplog.at_level(logging.WARNING, logger="ptkit.messaging"):
        async with running(consumer):
            await publish(publisher, schedule_confirmed(order_id))
            await eventually(lambda: seen(1), what="the consumer waiting for its durable")
            narrower = service_consumers(DURABLE, policies.subjects[1:], settings, stream)
            await provision_consumers(publisher.js, narrower)
            await eventually(lambda: seen(3), what="waiting while a subject is missing")
            assert await orders_confirmed(engine) == 0

            await provision_consumers(
                publisher.js, service_consumers(DURABLE, policies.subjects, settings, stream)
            )
            await eventually(lambda: orders_confirmed(engine), what="the waiting event handled")
