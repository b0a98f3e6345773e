"""ptkit's EventConsumer with transient errors, against a real nats-server: an event whose
handler fails because a dependency is down is redelivered past ``max_failures`` until it
succeeds (manager_svc's OrderCancelled while trainer_svc is down); any other error is
still dead-lettered after ``max_failures``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.js.errors import NotFoundError

from ptkit.messaging import ConsumerSettings, EventConsumer, JetStream
from ptplatform.events.v1 import events_pb2
from tests.conftest import NatsServer
from tests.helpers import eventually

SUBJECT = "pt.order.OrderCancelled"
DURABLE = "transient_test"


class DependencyDown(Exception):
    pass


class FailingHandler:
    """Raises ``error`` on the first ``failures`` deliveries of the first event it sees,
    then handles it; any later event is handled at once."""

    def __init__(self, error: type[Exception], failures: int) -> None:
        self.error = error
        self.failures = failures
        self.deliveries: list[str] = []
        self.handled: list[str] = []

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        self.deliveries.append(envelope.event_id)
        first = self.deliveries[0]
        if envelope.event_id == first and self.deliveries.count(first) <= self.failures:
            raise self.error(f"delivery {len(self.deliveries)}")
        self.handled.append(envelope.event_id)


async def publish(jetstream: JetStream) -> str:
    event_id = str(uuid.uuid4())
    envelope = events_pb2.EventEnvelope(
        event_id=event_id, event_type="OrderCancelled", order_id=str(uuid.uuid4()), source="order"
    )
    await jetstream.publish(SUBJECT, envelope.SerializeToString(), event_id)
    return event_id


@pytest.fixture
async def jetstream(nats_server: NatsServer) -> AsyncIterator[JetStream]:
    connection = JetStream(nats_server.url)
    await asyncio.wait_for(connection.connect(), 15)
    try:
        yield connection
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def consuming(jetstream: JetStream, handler: FailingHandler) -> AsyncIterator[str]:
    settings = ConsumerSettings(
        max_failures=2, ack_wait_seconds=5, backoff_seconds=(0.05,), transient=(DependencyDown,)
    )
    consumer = EventConsumer(jetstream, DURABLE, [SUBJECT], handler, settings)
    task = asyncio.create_task(consumer.run())
    event_id = await publish(jetstream)
    try:
        yield event_id
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_event_failing_with_a_transient_error_is_retried_past_max_failures(
    jetstream: JetStream,
) -> None:
    handler = FailingHandler(DependencyDown, failures=6)
    async with consuming(jetstream, handler) as event_id:

        async def handled() -> bool:
            return handler.handled == [event_id]

        await eventually(handled, what="the event handled after 6 transient failures")
        assert handler.deliveries == [event_id] * 7


async def test_other_errors_are_still_dead_lettered_after_max_failures(
    jetstream: JetStream,
) -> None:
    handler = FailingHandler(ValueError, failures=100)
    async with consuming(jetstream, handler) as poison:

        async def dead_lettered() -> bool:
            try:
                info = await jetstream.js.consumer_info(jetstream.stream.name, DURABLE)
            except NotFoundError:  # the consumer task has not created the durable yet
                return False
            return (
                handler.deliveries == [poison] * 2
                and info.num_ack_pending == 0
                and info.num_pending == 0
            )

        await eventually(dead_lettered, what="the poison event dead-lettered after 2 failures")
        # The consumer goes on with the next event, and the poison one is not seen again.
        follow_up = await publish(jetstream)

        async def follow_up_handled() -> bool:
            return handler.handled == [follow_up]

        await eventually(follow_up_handled, what="the next event handled")
        assert handler.deliveries == [poison, poison, follow_up]
