"""order_svc use cases against an in-memory unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import count

import pytest

from order_svc.application import handlers
from order_svc.application.paging import encode_page_token
from order_svc.domain.model import OrderNotFound, OrderStatus
from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue
from tests.order.fakes import FakeOrderUnitOfWork as FakeUnitOfWork

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)


def place(customer: str = "alice", request_id: str = "") -> handlers.PlaceOrder:
    return handlers.PlaceOrder(customer, "Alice", "Pilates", None, request_id, MANAGER)


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
        await handlers.cancel_order(handlers.CancelOrder("nope", "", MANAGER), FakeUnitOfWork())


def order_id(n: int) -> str:
    """A page token names an order by its UUID."""
    return str(uuid.UUID(int=n))


async def test_list_orders_pages_newest_first() -> None:
    uow = FakeUnitOfWork()
    minutes = count()
    for n in range(5):
        await handlers.place_order(
            place(),
            uow,
            new_id=lambda n=n: order_id(n),
            now=lambda: NOW.replace(minute=next(minutes)),
        )
    first = await handlers.list_orders(handlers.ListOrders("alice", MANAGER, 2, ""), uow)
    second = await handlers.list_orders(
        handlers.ListOrders("alice", MANAGER, 2, encode_page_token(first.next_cursor)), uow
    )
    third = await handlers.list_orders(
        handlers.ListOrders("alice", MANAGER, 2, encode_page_token(second.next_cursor)), uow
    )
    assert [o.order_id for o in first.orders + second.orders + third.orders] == [
        order_id(4),
        order_id(3),
        order_id(2),
        order_id(1),
        order_id(0),
    ]
    assert third.next_cursor is None


async def test_cancelling_another_customers_order_is_refused_and_changes_nothing() -> None:
    uow = FakeUnitOfWork()
    order = await handlers.place_order(place(), uow, new_id=lambda: "o-1")
    with pytest.raises(PermissionDenied):
        await handlers.cancel_order(
            handlers.CancelOrder("o-1", "", Caller("bob", Role.CUSTOMER)), uow
        )
    assert uow.orders.rows[order.order_id].status is OrderStatus.PLACED
    assert uow.commits == 1


async def test_a_customer_places_an_order_for_themselves_by_default() -> None:
    uow = FakeUnitOfWork()
    command = handlers.PlaceOrder(
        "", "Alice", "Pilates", None, " r-1 ", Caller("alice", Role.CUSTOMER)
    )
    order = await handlers.place_order(command, uow, new_id=lambda: "o-1")
    assert (order.customer_id, order.request_id) == ("alice", "r-1")


async def test_a_too_long_request_id_is_refused() -> None:
    command = handlers.PlaceOrder("alice", "Alice", "Pilates", None, "r" * 65, MANAGER)
    with pytest.raises(InvalidValue, match="request_id is too long"):
        await handlers.place_order(command, FakeUnitOfWork())
