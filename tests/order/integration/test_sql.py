"""order_svc's repository and unit of work against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_svc.adapters import sql
from order_svc.application import handlers
from order_svc.domain.model import OrderNotFound, OrderStatus
from ptkit.auth import Caller, Role
from ptkit.domain import ConcurrencyConflict
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageTokens
from ptkit.sql import AlreadyHandled, Causation
from ptplatform.events.v1 import events_pb2
from tests.helpers import database, outbox_envelopes

REQUEST = "6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)


def get(order_id: str) -> handlers.GetOrder:
    return handlers.GetOrder(order_id, MANAGER)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with database(database_url, sql.metadata) as engine:
        yield engine


def unit_of_work(engine: AsyncEngine) -> sql.SqlOrderUnitOfWork:
    return sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order"))


async def outbox(engine: AsyncEngine) -> list[events_pb2.EventEnvelope]:
    return await outbox_envelopes(engine, sql.messaging)


async def count_orders(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(sql.orders))).scalar_one()


def confirmed(order_id: str) -> handlers.ScheduleConfirmed:
    return handlers.ScheduleConfirmed(order_id)


def place(customer: str = "alice", request_id: str = "") -> handlers.PlaceOrder:
    return handlers.PlaceOrder(
        customer, "Alice", "Pilates 1:1", NOW + timedelta(days=1), request_id, MANAGER
    )


async def test_placed_order_reads_back_with_its_outbox_event(engine: AsyncEngine) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine))
    loaded = await handlers.get_order(get(order.order_id), unit_of_work(engine))
    assert loaded == order
    assert loaded.preferred_start == NOW + timedelta(days=1)
    [envelope] = await outbox(engine)
    assert envelope.event_type == "OrderPlaced"
    assert envelope.order_id == order.order_id
    assert envelope.aggregate_version == 1
    assert envelope.order_placed.class_name == "Pilates 1:1"


async def test_cancel_writes_state_and_event_in_one_transaction(engine: AsyncEngine) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine))
    await handlers.cancel_order(
        handlers.CancelOrder(order.order_id, "ill", MANAGER), unit_of_work(engine)
    )
    loaded = await handlers.get_order(get(order.order_id), unit_of_work(engine))
    assert loaded.status is OrderStatus.CANCELLED
    assert [(e.event_type, e.aggregate_version) for e in await outbox(engine)] == [
        ("OrderPlaced", 1),
        ("OrderCancelled", 2),
    ]


async def test_leaving_without_commit_writes_nothing(engine: AsyncEngine) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine))
    uow = unit_of_work(engine)
    with pytest.raises(RuntimeError):
        async with uow:
            loaded = await uow.orders.get(order.order_id)
            loaded.cancel("x", NOW)
            raise RuntimeError("crash before commit")
    assert (
        await handlers.get_order(get(order.order_id), unit_of_work(engine))
    ).status is OrderStatus.PLACED
    assert len(await outbox(engine)) == 1


async def test_unknown_order_is_not_found(engine: AsyncEngine) -> None:
    with pytest.raises(OrderNotFound):
        await handlers.get_order(get("5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"), unit_of_work(engine))


async def test_same_request_id_returns_the_same_order(engine: AsyncEngine) -> None:
    first = await handlers.place_order(place(request_id=REQUEST), unit_of_work(engine))
    again = await handlers.place_order(place(request_id=REQUEST), unit_of_work(engine))
    assert again.order_id == first.order_id
    assert await count_orders(engine) == 1
    assert len(await outbox(engine)) == 1


async def test_copies_of_a_request_racing_on_two_replicas_make_one_order(
    engine: AsyncEngine, database_url: str
) -> None:
    """The gateway's retry lands on another replica while the first try still runs:
    the unique (customer, request_id) lets one insert win, the others answer with it."""
    async with database(database_url, sql.metadata) as other_replica:
        replicas = [engine, other_replica] * 3
        copies = await asyncio.gather(
            *(handlers.place_order(place(request_id=REQUEST), unit_of_work(e)) for e in replicas)
        )
    assert {order.order_id for order in copies} == {copies[0].order_id}
    assert await count_orders(engine) == 1
    assert len(await outbox(engine)) == 1


async def test_concurrent_changes_to_one_order_conflict(engine: AsyncEngine) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine))
    uow = unit_of_work(engine)
    async with uow:
        stale = await uow.orders.get(order.order_id)
        # another writer changes the row after we read it
        await uow.connection.execute(
            update(sql.orders)
            .where(sql.orders.c.order_id == order.order_id)
            .values(version=sql.orders.c.version + 1)
        )
        stale.cancel("late", NOW)
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    assert (
        await handlers.get_order(get(order.order_id), unit_of_work(engine))
    ).status is OrderStatus.PLACED
    assert len(await outbox(engine)) == 1


async def test_list_orders_pages_through_every_order_once(engine: AsyncEngine) -> None:
    placed = [
        (await handlers.place_order(place(), unit_of_work(engine))).order_id for _ in range(7)
    ]
    await handlers.place_order(place(customer="bob"), unit_of_work(engine))
    seen: list[str] = []
    token = ""
    tokens = PageTokens.development()
    while True:
        query = handlers.ListOrders("alice", MANAGER, 3, token)
        page = await handlers.list_orders(query, unit_of_work(engine), tokens)
        seen += [o.order_id for o in page.items]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(placed)
    assert len(seen) == 7


async def test_an_event_is_handled_once_per_consumer(engine: AsyncEngine) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine))
    handled = unit_of_work(engine).handling(Causation("order_svc", "evt-1"))
    await handlers.confirm_order_on_schedule_confirmed(confirmed(order.order_id), handled)
    with pytest.raises(AlreadyHandled):
        await handlers.confirm_order_on_schedule_confirmed(
            confirmed(order.order_id),
            unit_of_work(engine).handling(Causation("order_svc", "evt-1")),
        )
    events = await outbox(engine)
    assert [e.event_type for e in events] == ["OrderPlaced", "OrderConfirmed"]
    assert events[1].causation_id == "evt-1"


async def test_two_copies_of_an_event_at_once_take_effect_once(engine: AsyncEngine) -> None:
    order = await handlers.place_order(place(), unit_of_work(engine))

    async def handle() -> str:
        uow = unit_of_work(engine).handling(Causation("order_svc", "evt-race"))
        try:
            await handlers.confirm_order_on_schedule_confirmed(confirmed(order.order_id), uow)
        except AlreadyHandled:
            return "duplicate"
        return "handled"

    results = await asyncio.gather(handle(), handle())
    assert sorted(results) == ["duplicate", "handled"]
    assert [e.event_type for e in await outbox(engine)] == ["OrderPlaced", "OrderConfirmed"]
