"""order_svc use cases against an in-memory unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import count

import pytest

from order_svc.application import handlers
from order_svc.domain.model import OrderNotFound, OrderStatus
from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue
from ptkit.paging import PageTokens
from tests.order.fakes import FakeOrderUnitOfWork as FakeUnitOfWork

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TOKENS = PageTokens.development()
REQUEST = "6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13"
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
    first = await handlers.place_order(place(request_id=REQUEST), uow, new_id=lambda: next(ids))
    again = await handlers.place_order(place(request_id=REQUEST), uow, new_id=lambda: next(ids))
    assert again.order_id == first.order_id
    assert len(uow.published) == 1


async def test_the_same_request_id_of_another_customer_is_another_order() -> None:
    uow = FakeUnitOfWork()
    ids = iter(["o-1", "o-2"])
    first = await handlers.place_order(place("alice", REQUEST), uow, new_id=lambda: next(ids))
    other = await handlers.place_order(place("bob", REQUEST), uow, new_id=lambda: next(ids))
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
    first = await handlers.list_orders(handlers.ListOrders("alice", MANAGER, 2, ""), uow, TOKENS)
    second = await handlers.list_orders(
        handlers.ListOrders("alice", MANAGER, 2, first.next_page_token), uow, TOKENS
    )
    third = await handlers.list_orders(
        handlers.ListOrders("alice", MANAGER, 2, second.next_page_token), uow, TOKENS
    )
    assert [o.order_id for o in first.items + second.items + third.items] == [
        order_id(4),
        order_id(3),
        order_id(2),
        order_id(1),
        order_id(0),
    ]
    assert third.next_page_token == ""


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
        "", "Alice", "Pilates", None, REQUEST.upper(), Caller("alice", Role.CUSTOMER)
    )
    order = await handlers.place_order(command, uow, new_id=lambda: "o-1")
    assert (order.customer_id, order.request_id) == ("alice", REQUEST)


@pytest.mark.parametrize("request_id", ["r-1", "r" * 65, REQUEST + "0", "{" + REQUEST + "}"])
async def test_a_request_id_that_is_not_a_uuid_is_refused(request_id: str) -> None:
    command = handlers.PlaceOrder("alice", "Alice", "Pilates", None, request_id, MANAGER)
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidValue, match=r"request_id .* is not a UUID") as refused:
        await handlers.place_order(command, uow)
    assert refused.value.field == "request_id"
    assert uow.commits == 0
