"""ptkit's EventConsumer applying a fetched batch in one transaction (one savepoint per
event), against a real nats-server and order_svc's real policy table and unit of work on
SQLite and PostgreSQL: a poison event holds no other back, lost acks after the commit
change nothing twice, one order's events keep their order, and a failing commit falls
back to one event at a time."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.msg import Msg
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from order_svc.adapters import sql
from order_svc.application.policies import POLICIES
from ptkit.events import EnvelopeSerializer
from ptkit.messaging import (
    ConsumerSettings,
    EventConsumer,
    HandlerBatch,
    JetStream,
    Policies,
    PolicyHandler,
    runs_alone,
)
from ptplatform.events.v1 import events_pb2
from tests.conftest import NatsServer
from tests.helpers import database, eventually, outbox_envelopes
from tests.ptkit.test_consumer import (
    DURABLE,
    all_acked,
    connected,
    counter,
    order_confirmed_events,
    orders_confirmed,
    place_orders,
    processed_events,
    publish,
    running,
    schedule_confirmed,
)

SETTINGS = ConsumerSettings(
    max_failures=3, ack_wait_seconds=2, batch=16, backoff_seconds=(0.05, 0.1), suspect_after=10
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with database(database_url, sql.metadata) as engine:
        yield engine


@pytest.fixture
async def publisher(nats_server: NatsServer) -> AsyncIterator[JetStream]:
    """The trainer side (and the consumer's own connection)."""
    async with connected(nats_server.url) as jetstream:
        yield jetstream


def policies(
    engine: AsyncEngine, cls: type[PolicyHandler] = PolicyHandler, table: Policies = POLICIES
) -> PolicyHandler:
    def new_uow() -> sql.SqlOrderUnitOfWork:
        return sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order"))

    return cls(DURABLE, table, new_uow)


def consumer(jetstream: JetStream, handler: PolicyHandler) -> EventConsumer:
    return EventConsumer(jetstream, handler.durable, handler.subjects, handler, SETTINGS)


def batched() -> float:
    """Events applied in batches so far (the sum of the batch-size histogram)."""
    value = REGISTRY.get_sample_value("pt_consumer_batch_events_sum", {"consumer": DURABLE})
    return value or 0.0


def fallbacks() -> float:
    value = REGISTRY.get_sample_value("pt_consumer_batch_fallbacks_total", {"consumer": DURABLE})
    return value or 0.0


def class_result_registered(order_id: str) -> events_pb2.EventEnvelope:
    envelope = events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type="ClassResultRegistered",
        order_id=order_id,
        aggregate_version=3,
        source="trainer",
    )
    envelope.class_result_registered.order_id = order_id
    envelope.class_result_registered.trainer_id = "trainer-1"
    envelope.class_result_registered.result = "Strong finish"
    return envelope


async def deliveries(jetstream: JetStream) -> int:
    """Messages the durable has delivered, redeliveries included."""
    info = await jetstream.js.consumer_info(jetstream.stream.name, DURABLE)
    return info.delivered.consumer_seq


async def test_a_poison_event_in_a_batch_leaves_the_others_committed_and_acked_once(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    order_ids = await place_orders(engine, 6)
    good = [schedule_confirmed(order_id) for order_id in order_ids]
    poison = schedule_confirmed("order-this-service-never-saw")  # its policy always raises
    handled, duplicates = counter("pt_events_handled_total"), counter("pt_events_duplicate_total")
    dead, in_batches = counter("pt_events_dead_lettered_total"), batched()
    for event in [*good[:3], poison, *good[3:]]:
        await publish(publisher, event)

    async with running(consumer(publisher, policies(engine))):

        async def poison_dead_lettered() -> bool:
            return counter("pt_events_dead_lettered_total") - dead >= 1

        await eventually(poison_dead_lettered, what="the poison event dead-lettered")
        await eventually(lambda: all_acked(publisher, 7), what="every message settled")

    assert batched() - in_batches == 7, "the first delivery of all seven was one batch"
    assert await deliveries(publisher) == 6 + SETTINGS.max_failures, "each good one once"
    assert counter("pt_events_handled_total") - handled == 6
    assert counter("pt_events_duplicate_total") == duplicates
    assert sorted(await processed_events(engine)) == sorted(e.event_id for e in good)
    assert await orders_confirmed(engine) == 6
    assert await order_confirmed_events(engine) == 6


async def test_acks_lost_after_the_batch_commit_bring_events_that_are_all_found_handled(
    engine: AsyncEngine, publisher: JetStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_ids = await place_orders(engine, 5)
    events = [schedule_confirmed(order_id) for order_id in order_ids]
    handled, duplicates = counter("pt_events_handled_total"), counter("pt_events_duplicate_total")
    for event in events:
        await publish(publisher, event)
    ack = Msg.ack
    lost: list[int] = []

    async def ack_lost_once(message: Msg) -> None:
        """The connection breaks at the first ack: no ack of that batch reaches NATS."""
        if not lost:
            lost.append(message.metadata.sequence.stream)
            raise nats.errors.ConnectionClosedError
        await ack(message)

    monkeypatch.setattr(Msg, "ack", ack_lost_once)
    async with running(consumer(publisher, policies(engine))):
        await eventually(lambda: all_acked(publisher, 5), what="all acked after redelivery")

    assert lost, "the batch's acks were lost"
    assert await deliveries(publisher) == 10, "the whole batch came again, once"
    assert counter("pt_events_handled_total") - handled == 5
    assert counter("pt_events_duplicate_total") - duplicates == 5
    assert sorted(await processed_events(engine)) == sorted(e.event_id for e in events)
    assert await orders_confirmed(engine) == 5
    assert await order_confirmed_events(engine) == 5, "no effect twice"


async def test_the_events_of_one_order_in_one_batch_are_applied_in_stream_order(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    order_ids = await place_orders(engine, 4)
    in_batches = batched()
    for order_id in order_ids:
        await publish(publisher, schedule_confirmed(order_id))
        result = class_result_registered(order_id)
        await publisher.publish(
            "pt.trainer.ClassResultRegistered", result.SerializeToString(), result.event_id
        )

    async with running(consumer(publisher, policies(engine))):
        await eventually(lambda: all_acked(publisher, 8), what="every event settled")

    assert batched() - in_batches == 8
    published = await outbox_envelopes(engine, sql.messaging)
    for order_id in order_ids:
        # confirmed, then completed: the other way round the confirmation changes nothing
        assert [e.event_type for e in published if e.order_id == order_id] == [
            "OrderPlaced",
            "OrderConfirmed",
            "OrderCompleted",
        ]


class RefusedCommit:
    """A batch whose commit the database refuses: nothing of it is committed."""

    def __init__(self, batch: HandlerBatch) -> None:
        self.batch = batch

    async def apply(self, envelope: events_pb2.EventEnvelope) -> None:
        await self.batch.apply(envelope)

    @property
    def broken(self) -> bool:
        return self.batch.broken

    async def commit(self) -> None:
        raise OperationalError("COMMIT", {}, Exception("the database refused the commit"))


class FirstCommitRefused(PolicyHandler):
    refused = 0

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[HandlerBatch]:  # type: ignore[override]
        async with super().batch() as batch:
            if self.refused:
                yield batch
            else:
                self.refused += 1
                yield RefusedCommit(batch)


async def test_a_refused_batch_commit_falls_back_to_one_at_a_time_and_each_takes_effect_once(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    order_ids = await place_orders(engine, 5)
    events = [schedule_confirmed(order_id) for order_id in order_ids]
    handled, duplicates = counter("pt_events_handled_total"), counter("pt_events_duplicate_total")
    fell_back, redelivered = fallbacks(), counter("pt_events_redelivered_total")
    for event in events:
        await publish(publisher, event)
    handler = policies(engine, FirstCommitRefused)

    async with running(consumer(publisher, handler)):
        await eventually(lambda: all_acked(publisher, 5), what="every event settled")

    assert handler.refused == 1
    assert fallbacks() - fell_back == 1
    assert await deliveries(publisher) == 5, "handled one at a time in the same delivery"
    assert counter("pt_events_redelivered_total") == redelivered
    assert counter("pt_events_handled_total") - handled == 5
    assert counter("pt_events_duplicate_total") == duplicates
    assert sorted(await processed_events(engine)) == sorted(e.event_id for e in events)
    assert await orders_confirmed(engine) == 5
    assert await order_confirmed_events(engine) == 5


async def test_an_event_whose_policy_runs_alone_is_never_batched(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    order_ids = await place_orders(engine, 4)
    table = {
        kind: runs_alone(policy) if kind.__name__ == "ScheduleConfirmed" else policy
        for kind, policy in POLICIES.items()
    }
    handled, in_batches = counter("pt_events_handled_total"), batched()
    for order_id in order_ids:
        await publish(publisher, schedule_confirmed(order_id))

    async with running(consumer(publisher, policies(engine, table=table))):
        await eventually(lambda: all_acked(publisher, 4), what="every event settled")

    assert batched() == in_batches
    assert counter("pt_events_handled_total") - handled == 4
    assert await orders_confirmed(engine) == 4
