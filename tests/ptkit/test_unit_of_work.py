"""The kit's SQL unit of work against real SQLite and PostgreSQL: a commit writes the
state change and its outbox rows together or not at all. A failure while writing the
outbox rows (the database refusing them, or an event that cannot be serialized) must
leave neither the state change nor any outbox row behind; otherwise a state change
would be committed whose event is never published."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order_svc.adapters import sql
from order_svc.application import handlers
from order_svc.domain.model import OrderStatus
from ptkit.auth import Caller, Role
from ptkit.domain import DomainEvent
from ptkit.events import EnvelopeSerializer
from ptkit.sql import AlreadyHandled, Causation, EventSerializer, OutboxMessage
from tests.helpers import database, outbox_envelopes


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with database(database_url, sql.metadata) as engine:
        yield engine


class ReusedEventId:
    """Serializes as the service does, but gives every message the event id of the first
    one: the database refuses the second outbox row (``outbox.event_id`` is unique)."""

    def __init__(self) -> None:
        self.serializer = EnvelopeSerializer("order")
        self.event_id: str | None = None

    def __call__(
        self, event: DomainEvent, aggregate_version: int, causation_id: str
    ) -> OutboxMessage:
        message = self.serializer(event, aggregate_version, causation_id)
        self.event_id = self.event_id or message.event_id
        return OutboxMessage(self.event_id, message.event_type, message.subject, message.payload)


class Unserializable(Exception):
    pass


def refuse_to_serialize(
    event: DomainEvent, aggregate_version: int, causation_id: str
) -> OutboxMessage:
    raise Unserializable(event.event_type)


def unit_of_work(engine: AsyncEngine, serializer: EventSerializer) -> sql.SqlOrderUnitOfWork:
    return sql.SqlOrderUnitOfWork(engine, sql.messaging, serializer)


ALICE = Caller("alice", Role.CUSTOMER)


def place() -> handlers.PlaceOrder:
    return handlers.PlaceOrder("alice", "Alice", "Pilates", None, "", ALICE)


async def count_orders(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(sql.orders))).scalar_one()


async def event_types(engine: AsyncEngine) -> list[str]:
    return [e.event_type for e in await outbox_envelopes(engine, sql.messaging)]


async def test_a_change_whose_outbox_row_the_database_refuses_is_not_committed(
    engine: AsyncEngine,
) -> None:
    serializer = ReusedEventId()
    order = await handlers.place_order(place(), unit_of_work(engine, serializer))

    with pytest.raises(IntegrityError):
        await handlers.cancel_order(
            handlers.CancelOrder(order.order_id, "ill", ALICE), unit_of_work(engine, serializer)
        )

    stored = await handlers.get_order(
        handlers.GetOrder(order.order_id, ALICE), unit_of_work(engine, serializer)
    )
    assert stored.status is OrderStatus.PLACED
    assert await event_types(engine) == ["OrderPlaced"]


async def test_a_new_aggregate_whose_outbox_row_the_database_refuses_is_not_stored(
    engine: AsyncEngine,
) -> None:
    serializer = ReusedEventId()
    await handlers.place_order(place(), unit_of_work(engine, serializer))

    with pytest.raises(IntegrityError):
        await handlers.place_order(place(), unit_of_work(engine, serializer))

    assert await count_orders(engine) == 1
    assert await event_types(engine) == ["OrderPlaced"]


async def test_a_change_whose_event_cannot_be_serialized_is_not_committed(
    engine: AsyncEngine,
) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine, EnvelopeSerializer("order")))

    with pytest.raises(Unserializable):
        await handlers.cancel_order(
            handlers.CancelOrder(order.order_id, "ill", ALICE),
            unit_of_work(engine, refuse_to_serialize),
        )
    with pytest.raises(Unserializable):
        await handlers.place_order(place(), unit_of_work(engine, refuse_to_serialize))

    stored = await handlers.get_order(
        handlers.GetOrder(order.order_id, ALICE), unit_of_work(engine, refuse_to_serialize)
    )
    assert stored.status is OrderStatus.PLACED
    assert await count_orders(engine) == 1
    assert await event_types(engine) == ["OrderPlaced"]


async def test_a_unit_of_work_within_an_open_transaction_is_a_savepoint_of_it(
    engine: AsyncEngine,
) -> None:
    """Committed units of work ``within`` a connection land only when the outer
    transaction commits; a failed one rolls back its savepoint and nothing else."""
    serializer = EnvelopeSerializer("order")

    def nested(connection: AsyncConnection) -> sql.SqlOrderUnitOfWork:
        return sql.SqlOrderUnitOfWork(engine, sql.messaging, serializer, within=connection)

    async with engine.connect() as connection:
        async with connection.begin() as outer:
            await handlers.place_order(place(), nested(connection))
            with pytest.raises(Unserializable):
                await handlers.place_order(
                    place(),
                    sql.SqlOrderUnitOfWork(
                        engine, sql.messaging, refuse_to_serialize, within=connection
                    ),
                )
            await handlers.place_order(place(), nested(connection))
            assert not connection.closed, "the units of work leave the outer connection open"
            await outer.rollback()
    assert await count_orders(engine) == 0, "the outer rollback undid both savepoints"

    async with engine.connect() as connection:
        async with connection.begin():
            await handlers.place_order(place(), nested(connection))
            await handlers.place_order(place(), nested(connection))
    assert await count_orders(engine) == 2
    assert await event_types(engine) == ["OrderPlaced", "OrderPlaced"]


async def test_a_batch_commits_its_units_of_work_once_and_wakes_the_relay_after_it(
    engine: AsyncEngine,
) -> None:
    """Each event's unit of work in a batch is a savepoint: an event already handled
    rolls back its own savepoint only; the on_commit callbacks run once, after the
    batch's one commit, and none before."""
    woken: list[int] = []
    kind = sql.SqlOrderUnitOfWork(
        engine, sql.messaging, EnvelopeSerializer("order"), on_commit=[lambda: woken.append(1)]
    )
    order_id = (await handlers.place_order(place(), kind)).order_id
    woken.clear()
    confirmed = handlers.ScheduleConfirmed(order_id=order_id)
    async with kind.batch() as batch:
        await handlers.confirm_order_on_schedule_confirmed(
            confirmed, batch.handling(Causation("order_svc", "e-1"))
        )
        with pytest.raises(AlreadyHandled):
            await handlers.confirm_order_on_schedule_confirmed(
                confirmed, batch.handling(Causation("order_svc", "e-1"))
            )
        await handlers.place_order(place(), batch.handling(Causation("order_svc", "e-2")))
        assert not batch.broken, "a rolled-back savepoint leaves the batch usable"
        assert woken == [], "no wake before the batch commits"
        await batch.commit()
    assert woken == [1]
    assert await count_orders(engine) == 2
    assert await event_types(engine) == ["OrderPlaced", "OrderConfirmed", "OrderPlaced"]


async def test_a_batch_left_without_commit_takes_no_effect(engine: AsyncEngine) -> None:
    kind = sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order"))
    async with kind.batch() as batch:
        await handlers.place_order(place(), batch.handling(Causation("order_svc", "e-1")))
    assert await count_orders(engine) == 0
    async with kind.batch() as batch:
        await handlers.place_order(place(), batch.handling(Causation("order_svc", "e-1")))
        await batch.commit()
    assert await count_orders(engine) == 1, "the rolled-back mark did not stay behind"
