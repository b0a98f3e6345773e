"""The order repository contract: the same tests against the in-memory fake
(tests/order/fakes.py) and the SQL repository on SQLite and PostgreSQL, so the
fake the unit tests use cannot drift from what users get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from order_svc.adapters import sql
from order_svc.application.ports import ORDER_PAGES
from order_svc.domain.model import Order, OrderNotFound, OrderStatus
from ptkit.domain import ConcurrencyConflict
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageRequest
from ptkit.sql import AlreadyHandled, Causation
from tests.order.fakes import FakeOrderUnitOfWork
from tests.repository_contract import Backend, open_backend

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
FIRST_TEN = PageRequest(ORDER_PAGES, 10)


@pytest.fixture
async def backend(store_url: str) -> AsyncIterator[Backend]:
    def new_uow(engine: AsyncEngine) -> Any:
        return sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order"))

    async with open_backend(
        store_url, FakeOrderUnitOfWork, new_uow, sql.metadata, sql.messaging
    ) as opened:
        yield opened


def order(
    n: int, customer: str = "alice", request_id: str = "", minute: int | None = None
) -> Order:
    return Order.place(
        order_id=f"o-{n}",
        customer_id=customer,
        customer_name="Alice",
        class_name="Pilates 1:1",
        preferred_start=NOW + timedelta(days=1),
        request_id=request_id,
        now=NOW + timedelta(minutes=n if minute is None else minute),
    )


async def stored(backend: Backend, *orders: Order) -> None:
    async with backend.uow() as uow:
        for each in orders:
            await uow.orders.add(each)
        await uow.commit()


async def test_an_added_order_reads_back_equal(backend: Backend) -> None:
    placed = order(1)
    await stored(backend, placed)
    async with backend.uow() as uow:
        assert await uow.orders.get("o-1") == placed


async def test_an_unknown_order_is_not_found(backend: Backend) -> None:
    async with backend.uow() as uow:
        with pytest.raises(OrderNotFound):
            await uow.orders.get("o-unknown")


async def test_find_by_request_matches_customer_and_request_id(backend: Backend) -> None:
    await stored(backend, order(1, "alice", "r-1"), order(2, "bob", "r-1"))
    async with backend.uow() as uow:
        assert (await uow.orders.find_by_request("alice", "r-1")).order_id == "o-1"
        assert (await uow.orders.find_by_request("bob", "r-1")).order_id == "o-2"
        assert await uow.orders.find_by_request("alice", "r-2") is None


async def test_a_second_order_with_the_same_request_id_is_a_conflict(backend: Backend) -> None:
    await stored(backend, order(1, "alice", "r-1"))
    with pytest.raises(ConcurrencyConflict):
        async with backend.uow() as uow:
            await uow.orders.add(order(2, "alice", "r-1"))
            await uow.commit()


async def test_orders_without_request_id_may_be_many(backend: Backend) -> None:
    await stored(backend, order(1), order(2))
    async with backend.uow() as uow:
        assert len(await uow.orders.list("alice", FIRST_TEN)) == 2


async def test_a_second_order_with_the_same_id_is_a_conflict(backend: Backend) -> None:
    await stored(backend, order(1))
    with pytest.raises(ConcurrencyConflict):
        async with backend.uow() as uow:
            await uow.orders.add(order(1, "bob"))
            await uow.commit()


async def test_list_is_newest_first_filtered_by_customer(backend: Backend) -> None:
    await stored(backend, order(1), order(2, "bob"), order(3), order(4, minute=3))
    async with backend.uow() as uow:
        everyone = [o.order_id for o in await uow.orders.list(None, FIRST_TEN)]
        alice = [o.order_id for o in await uow.orders.list("alice", FIRST_TEN)]
    assert everyone == ["o-4", "o-3", "o-2", "o-1"]  # same time: larger id first
    assert alice == ["o-4", "o-3", "o-1"]


async def test_list_pages_through_every_order_once(backend: Backend) -> None:
    await stored(backend, *(order(n, minute=n // 2) for n in range(7)))
    seen: list[str] = []
    after = None
    async with backend.uow() as uow:
        while page := await uow.orders.list("alice", PageRequest(ORDER_PAGES, 3, after)):
            assert len(page) <= 4  # one more than the page holds
            seen += [o.order_id for o in page[:3]]
            after = ORDER_PAGES.position_of(page[min(2, len(page) - 1)])
            if len(page) <= 3:
                break
    assert seen == [f"o-{n}" for n in reversed(range(7))]


async def test_a_listed_order_changed_is_not_written(backend: Backend) -> None:
    await stored(backend, order(1))
    async with backend.uow() as uow:
        [listed] = await uow.orders.list("alice", FIRST_TEN)
        listed.cancel("not through get", NOW)
        await uow.commit()
    async with backend.uow() as uow:
        assert (await uow.orders.get("o-1")).status is OrderStatus.PLACED
    assert [e[0] for e in await backend.outbox()] == ["OrderPlaced"]


async def test_leaving_without_commit_keeps_nothing(backend: Backend) -> None:
    await stored(backend, order(1))
    async with backend.uow() as uow:
        (await uow.orders.get("o-1")).cancel("x", NOW)
        await uow.orders.add(order(2))
    async with backend.uow() as uow:
        assert (await uow.orders.get("o-1")).status is OrderStatus.PLACED
        with pytest.raises(OrderNotFound):
            await uow.orders.get("o-2")
    assert [e[0] for e in await backend.outbox()] == ["OrderPlaced"]


async def test_events_reach_the_outbox_with_their_versions_in_the_commit(
    backend: Backend,
) -> None:
    await stored(backend, order(1))
    async with backend.uow() as uow:
        (await uow.orders.get("o-1")).cancel("ill", NOW)
        await uow.commit()
    assert await backend.outbox() == [("OrderPlaced", 1, ""), ("OrderCancelled", 2, "")]


async def test_an_order_changed_by_another_writer_is_a_conflict(backend: Backend) -> None:
    await stored(backend, order(1))
    async with backend.uow() as uow:
        stale = await uow.orders.get("o-1")
        await backend.another_writer_bumps(uow, "orders", "o-1")
        stale.cancel("late", NOW)
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    assert [e[0] for e in await backend.outbox()] == ["OrderPlaced"]


# SQLite's BEGIN IMMEDIATE runs one writing unit of work at a time: no overlap to test
@pytest.mark.parametrize("store_url", ["memory", "postgresql"], indirect=True)
async def test_two_units_of_work_changing_one_order_conflict(backend: Backend) -> None:
    await stored(backend, order(1))
    async with backend.uow() as slow:
        stale = await slow.orders.get("o-1")
        async with backend.uow() as fast:
            (await fast.orders.get("o-1")).confirm(NOW)
            await fast.commit()
        stale.cancel("late", NOW)
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()
    async with backend.uow() as uow:
        assert (await uow.orders.get("o-1")).status is OrderStatus.CONFIRMED


async def test_an_event_is_handled_once_and_its_causation_reaches_the_outbox(
    backend: Backend,
) -> None:
    await stored(backend, order(1))
    causation = Causation("order_svc", "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e")
    async with backend.uow(causation) as uow:
        (await uow.orders.get("o-1")).confirm(NOW)
        await uow.commit()
    with pytest.raises(AlreadyHandled):
        async with backend.uow(causation):
            pass
    assert (await backend.outbox())[-1] == ("OrderConfirmed", 2, causation.event_id)
