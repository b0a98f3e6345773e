"""order_svc use cases against an in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest

from order_svc.application import handlers
from order_svc.domain.model import OrderNotFound, OrderStatus
from tests.unit.order_svc.fakes import FakeOrderUnitOfWork as FakeUnitOfWork

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def place(customer: str = "alice", request_id: str = "") -> handlers.PlaceOrder:
    return handlers.PlaceOrder(customer, "Alice", "Pilates", None, request_id)


async def test_place_order_commits_the_order_and_its_event() -> None:
    uow = FakeUnitOfWork()
    order = await handlers.place_order(place(), uow, new_id=lambda: "o-1", now=lambda: NOW)
    assert order.status is OrderStatus.PLACED
    assert uow.commits == 1
    assert [type(e).__name__ for e in uow.published] == ["OrderPlaced"]


async def test_the_same_request_id_returns_the_same_order() -> None:
    uow = FakeUnitOfWork()
    ids = iter(["o-1", "o-2"])
    first = await handlers.place_order(place(request_id="r-1"), uow, new_id=lambda: next(ids))
    again = await handlers.place_order(place(request_id="r-1"), uow, new_id=lambda: next(ids))
    assert again.order_id == first.order_id
    assert len(uow.published) == 1


async def test_the_same_request_id_of_another_customer_is_another_order() -> None:
    uow = FakeUnitOfWork()
    ids = iter(["o-1", "o-2"])
    first = await handlers.place_order(place("alice", "r-1"), uow, new_id=lambda: next(ids))
    other = await handlers.place_order(place("bob", "r-1"), uow, new_id=lambda: next(ids))
    assert other.order_id != first.order_id


async def test_cancel_unknown_order_is_not_found() -> None:
    with pytest.raises(OrderNotFound):
        await handlers.cancel_order(handlers.CancelOrder("nope", ""), FakeUnitOfWork())


async def test_list_orders_pages_newest_first() -> None:
    uow = FakeUnitOfWork()
    minutes = count()
    for n in range(5):
        await handlers.place_order(
            place(), uow, new_id=lambda n=n: f"o-{n}", now=lambda: NOW.replace(minute=next(minutes))
        )
    first = await handlers.list_orders("alice", 2, None, uow)
    second = await handlers.list_orders("alice", 2, first.next_cursor, uow)
    third = await handlers.list_orders("alice", 2, second.next_cursor, uow)
    assert [o.order_id for o in first.orders + second.orders + third.orders] == [
        "o-4",
        "o-3",
        "o-2",
        "o-1",
        "o-0",
    ]
    assert third.next_cursor is None


async def test_policies_confirm_then_complete() -> None:
    uow = FakeUnitOfWork()
    order = await handlers.place_order(place(), uow, new_id=lambda: "o-1")
    await handlers.confirm_order_on_schedule_confirmed(handlers.ScheduleConfirmed("o-1"), uow)
    assert uow.orders.rows[order.order_id].status is OrderStatus.CONFIRMED
    await handlers.complete_order_on_class_result_registered(
        handlers.ClassResultRegistered("o-1"), uow
    )
    assert uow.orders.rows[order.order_id].status is OrderStatus.COMPLETED
