"""ptkit's EventConsumer against a real nats-server, driving order_svc's real policy table
and unit of work on a SQLite database: idempotence, catch-up after downtime, work-sharing
between replicas and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY
from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from order_svc.adapters import sql
from order_svc.application import handlers
from order_svc.application.policies import POLICIES
from order_svc.domain.model import OrderStatus
from ptctl.dlq import dead_letters
from ptkit import dead_letters as dead_letters_api
from ptkit.auth import Caller, Role
from ptkit.events import EnvelopeSerializer
from ptkit.messaging import ConsumerSettings, EventConsumer, Handler, JetStream, PolicyHandler
from ptkit.sql import create_engine
from ptplatform.events.v1 import events_pb2
from tests.conftest import NatsServer
from tests.helpers import database, eventually

DURABLE = "order_svc"
SUBJECT = "pt.trainer.ScheduleConfirmed"
EVENT_TYPE = "ScheduleConfirmed"
SERVICE_SETTINGS = ConsumerSettings()
POISON_SETTINGS = ConsumerSettings(
    max_failures=3, ack_wait_seconds=5, batch=8, backoff_seconds=(0.05, 0.1), suspect_after=10
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with database(f"sqlite:///{tmp_path / 'order.db'}", sql.metadata) as engine:
        yield engine


@pytest.fixture
async def publisher(nats_server: NatsServer) -> AsyncIterator[JetStream]:
    """The trainer side: publishes ScheduleConfirmed envelopes."""
    async with connected(nats_server.url) as jetstream:
        yield jetstream


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[JetStream]:
    """A NATS connection of its own, as each service process (replica) has."""
    jetstream = JetStream(url)
    await asyncio.wait_for(jetstream.connect(), 15)
    try:
        yield jetstream
    finally:
        await jetstream.close()


@contextlib.asynccontextmanager
async def running(*consumers: EventConsumer) -> AsyncIterator[None]:
    """Run consumers until the block ends, then stop them as a shutdown would."""
    tasks = [asyncio.create_task(consumer.run()) for consumer in consumers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def order_consumer(
    jetstream: JetStream,
    engine: AsyncEngine,
    settings: ConsumerSettings = SERVICE_SETTINGS,
    handler: Handler | None = None,
) -> EventConsumer:
    policies = order_policies(engine)
    return EventConsumer(
        jetstream, policies.durable, policies.subjects, handler or policies, settings=settings
    )


def order_policies(engine: AsyncEngine) -> PolicyHandler:
    """order_svc's policy table, as its main.py hands it to the runtime."""

    def new_uow() -> sql.SqlOrderUnitOfWork:
        return sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order"))

    return PolicyHandler("order_svc", POLICIES, new_uow)


class RecordingHandler:
    """order_svc's handler, remembering the events whose effect this replica committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.handler = order_policies(engine)
        self.handled: list[str] = []

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        await self.handler(envelope)
        self.handled.append(envelope.event_id)


async def place_orders(engine: AsyncEngine, count: int) -> list[str]:
    order_ids = []
    for _ in range(count):
        order = await handlers.place_order(
            handlers.PlaceOrder(
                "alice", "Alice", "Pilates", None, "", Caller("alice", Role.CUSTOMER)
            ),
            sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order")),
        )
        order_ids.append(order.order_id)
    return order_ids


def schedule_confirmed(order_id: str) -> events_pb2.EventEnvelope:
    envelope = events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type=EVENT_TYPE,
        order_id=order_id,
        aggregate_version=2,
        source="trainer",
    )
    envelope.schedule_confirmed.order_id = order_id
    envelope.schedule_confirmed.trainer_id = "trainer-1"
    envelope.schedule_confirmed.duration_minutes = 50
    return envelope


async def publish(
    jetstream: JetStream, envelope: events_pb2.EventEnvelope, msg_id: str | None = None
) -> None:
    await jetstream.publish(SUBJECT, envelope.SerializeToString(), msg_id or envelope.event_id)


def counter(name: str, event_type: str = EVENT_TYPE) -> float:
    value = REGISTRY.get_sample_value(name, {"consumer": DURABLE, "event_type": event_type})
    return value or 0.0


async def count_rows(engine: AsyncEngine, table: Table, *where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(table).where(*where)
    async with engine.connect() as connection:
        return (await connection.execute(query)).scalar_one()


async def processed_events(engine: AsyncEngine) -> list[str]:
    table = sql.messaging.processed_events
    async with engine.connect() as connection:
        rows = await connection.execute(select(table.c.event_id).where(table.c.consumer == DURABLE))
        return [row.event_id for row in rows]


async def orders_confirmed(engine: AsyncEngine) -> int:
    return await count_rows(engine, sql.orders, sql.orders.c.status == OrderStatus.CONFIRMED.value)


async def order_confirmed_events(engine: AsyncEngine) -> int:
    outbox = sql.messaging.outbox
    return await count_rows(engine, outbox, outbox.c.event_type == "OrderConfirmed")


async def consumer_info(jetstream: JetStream) -> ConsumerInfo | None:
    """The durable's state; None while no consumer has created it yet."""
    try:
        return await jetstream.js.consumer_info(jetstream.stream.name, DURABLE)
    except NotFoundError:
        return None


async def all_acked(jetstream: JetStream, delivered: int) -> ConsumerInfo | None:
    """The consumer info once ``delivered`` messages went out and none awaits an ack."""
    info = await consumer_info(jetstream)
    if info is None or info.num_ack_pending or info.num_pending:
        return None
    return info if info.delivered.stream_seq >= delivered else None


async def test_an_event_delivered_twice_takes_effect_once_and_the_copy_is_acked(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    [order_id] = await place_orders(engine, 1)
    event = schedule_confirmed(order_id)
    handled, duplicates = counter("pt_events_handled_total"), counter("pt_events_duplicate_total")
    async with running(order_consumer(publisher, engine)):
        # the same event twice, outside JetStream's duplicate window (another Nats-Msg-Id)
        await publish(publisher, event, msg_id=f"{event.event_id}-first")
        await publish(publisher, event, msg_id=f"{event.event_id}-resent")

        async def duplicate_counted() -> bool:
            return counter("pt_events_duplicate_total") - duplicates >= 1

        await eventually(duplicate_counted, what="the second copy counted as duplicate")
        info = await eventually(lambda: all_acked(publisher, 2), what="both copies acked")

    assert info.num_redelivered == 0
    assert counter("pt_events_handled_total") - handled == 1
    assert counter("pt_events_duplicate_total") - duplicates == 1
    assert await processed_events(engine) == [event.event_id]
    assert await orders_confirmed(engine) == 1
    assert await order_confirmed_events(engine) == 1


async def test_a_consumer_stopped_while_50_events_are_published_handles_them_after_restart(
    engine: AsyncEngine, publisher: JetStream, nats_server: NatsServer
) -> None:
    first, *later = await place_orders(engine, 51)
    async with connected(nats_server.url) as replica:
        async with running(order_consumer(replica, engine)):
            await publish(publisher, schedule_confirmed(first))
            await eventually(lambda: all_acked(publisher, 1), what="the first event handled")

    async def no_one_pulling() -> bool:
        info = await consumer_info(publisher)
        return info is not None and info.num_waiting == 0

    await eventually(no_one_pulling, what="the server noticed the consumer is gone")
    # the service is down: 50 events are published meanwhile
    for order_id in later:
        await publish(publisher, schedule_confirmed(order_id))
    stopped = await consumer_info(publisher)
    assert stopped is not None and stopped.num_pending == 50
    assert await orders_confirmed(engine) == 1

    async with connected(nats_server.url) as restarted:
        async with running(order_consumer(restarted, engine)):

            async def all_handled() -> bool:
                return len(await processed_events(engine)) == 51

            await eventually(all_handled, what="all 50 events handled after restart")
            await eventually(lambda: all_acked(publisher, 51), what="all events acked")

    assert await orders_confirmed(engine) == 51
    assert await order_confirmed_events(engine) == 51


async def test_two_replicas_of_one_durable_share_the_events_and_handle_each_once(
    engine: AsyncEngine, publisher: JetStream, nats_server: NatsServer, tmp_path: Path
) -> None:
    order_ids = await place_orders(engine, 50)
    other_engine = create_engine(f"sqlite:///{tmp_path / 'order.db'}")
    replica_a, replica_b = RecordingHandler(engine), RecordingHandler(other_engine)
    duplicates = counter("pt_events_duplicate_total")
    settings = ConsumerSettings(batch=4)
    try:
        async with (
            connected(nats_server.url) as nats_a,
            connected(nats_server.url) as nats_b,
            running(
                order_consumer(nats_a, engine, settings, replica_a),
                order_consumer(nats_b, other_engine, settings, replica_b),
            ),
        ):

            async def both_waiting() -> bool:
                info = await consumer_info(publisher)
                return info is not None and info.num_waiting >= 2

            await eventually(both_waiting, what="both replicas pulling")
            events = [schedule_confirmed(order_id) for order_id in order_ids]
            for event in events:
                await publish(publisher, event)
            await eventually(lambda: all_acked(publisher, 50), what="all 50 events acked")
    finally:
        await other_engine.dispose()

    assert replica_a.handled and replica_b.handled, "both replicas take a share"
    assert not set(replica_a.handled) & set(replica_b.handled)
    assert sorted(replica_a.handled + replica_b.handled) == sorted(e.event_id for e in events)
    assert counter("pt_events_duplicate_total") == duplicates
    assert sorted(await processed_events(engine)) == sorted(e.event_id for e in events)
    assert await orders_confirmed(engine) == 50
    assert await order_confirmed_events(engine) == 50


def dead_letter_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "ptkit.messaging" and record.getMessage() == "event dead-lettered"
    ]


async def test_an_undecodable_message_is_dead_lettered_at_once_and_later_events_are_handled(
    engine: AsyncEngine, publisher: JetStream, caplog: pytest.LogCaptureFixture
) -> None:
    [order_id] = await place_orders(engine, 1)
    dead = counter("pt_events_dead_lettered_total", "undecodable")
    garbage = b"\xff\x00 not an envelope"
    async with running(order_consumer(publisher, engine, POISON_SETTINGS)):
        await publisher.publish(SUBJECT, garbage, str(uuid.uuid4()))
        good = schedule_confirmed(order_id)
        await publish(publisher, good)

        await eventually(lambda: processed_events(engine), what="the good event handled")
        info = await eventually(lambda: all_acked(publisher, 2), what="both messages settled")

    assert info.num_redelivered == 0, "an undecodable message is not retried"
    assert counter("pt_events_dead_lettered_total", "undecodable") - dead == 1
    [record] = dead_letter_records(caplog)
    assert (record.levelno, record.consumer, record.event_type) == (
        logging.ERROR,
        DURABLE,
        "undecodable",
    )
    assert (record.stream_seq, record.deliveries) == (1, 1)
    [letter] = await dead_letters(publisher.js)
    assert letter.data == garbage
    assert letter.headers[dead_letters_api.CONSUMER] == DURABLE
    assert letter.headers[dead_letters_api.EVENT_TYPE] == "undecodable"
    assert "undecodable envelope" in letter.headers[dead_letters_api.ERROR]
    assert await processed_events(engine) == [good.event_id]
    assert await orders_confirmed(engine) == 1


async def test_an_event_failing_max_failures_times_is_dead_lettered_and_the_consumer_goes_on(
    engine: AsyncEngine, publisher: JetStream, caplog: pytest.LogCaptureFixture
) -> None:
    [order_id] = await place_orders(engine, 1)
    poison = schedule_confirmed("order-this-service-never-saw")  # the handler always raises
    dead = counter("pt_events_dead_lettered_total")
    redelivered = counter("pt_events_redelivered_total")
    async with running(order_consumer(publisher, engine, POISON_SETTINGS)):
        await publish(publisher, poison)

        async def poison_dead_lettered() -> bool:
            return counter("pt_events_dead_lettered_total") - dead >= 1

        await eventually(poison_dead_lettered, what="the poison event dead-lettered")
        good = schedule_confirmed(order_id)
        await publish(publisher, good)
        await eventually(lambda: processed_events(engine), what="a later event handled")
        await eventually(lambda: all_acked(publisher, 2), what="both messages settled")

    assert counter("pt_events_dead_lettered_total") - dead == 1
    failures = POISON_SETTINGS.max_failures
    assert counter("pt_events_redelivered_total") - redelivered == failures - 1
    [record] = dead_letter_records(caplog)
    assert (record.consumer, record.event_type, record.event_id, record.order_id) == (
        DURABLE,
        EVENT_TYPE,
        poison.event_id,
        poison.order_id,
    )
    assert (record.deliveries, record.failures) == (failures, failures)
    assert "OrderNotFound" in record.error
    [letter] = await dead_letters(publisher.js)
    assert events_pb2.EventEnvelope.FromString(letter.data) == poison
    headers = letter.headers
    assert headers["Nats-Msg-Id"] == f"dead.{DURABLE}.PT_EVENTS.1"
    assert (headers[dead_letters_api.CONSUMER], headers[dead_letters_api.STREAM]) == (
        DURABLE,
        "PT_EVENTS",
    )
    assert (headers[dead_letters_api.EVENT_ID], headers[dead_letters_api.ORDER_ID]) == (
        poison.event_id,
        poison.order_id,
    )
    assert headers[dead_letters_api.EVENT_TYPE] == EVENT_TYPE
    assert headers[dead_letters_api.STREAM_SEQ] == "1"
    assert headers[dead_letters_api.DELIVERIES] == headers[dead_letters_api.FAILURES] == "3"
    assert headers[dead_letters_api.SUBJECT] == SUBJECT
    assert "OrderNotFound" in headers[dead_letters_api.ERROR]
    assert len(headers[dead_letters_api.ERROR]) <= dead_letters_api.MAX_ERROR_LENGTH
    assert await processed_events(engine) == [good.event_id], "a failed event leaves no mark"
    assert await orders_confirmed(engine) == 1
    info = await consumer_info(publisher)
    assert info is not None and info.config.max_deliver == -1, "the server never gives up"
