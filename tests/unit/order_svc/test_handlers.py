"""order_svc use cases against an in-memory unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import count
from typing import Self

import pytest

from order_svc.application import handlers
from order_svc.application.paging import encode_page_token
from order_svc.application.ports import PageCursor
from order_svc.domain.model import Order, OrderNotFound, OrderStatus
from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)


class FakeOrders:
    def __init__(self) -> None:
        self.rows: dict[str, Order] = {}

    async def add(self, order: Order) -> None:
        self.rows[order.order_id] = order

    async def get(self, order_id: str) -> Order:
        if order_id not in self.rows:
            raise OrderNotFound(order_id)
        return self.rows[order_id]

    async def find_by_request(self, customer_id: str, request_id: str) -> Order | None:
        return next(
            (
                o
                for o in self.rows.values()
                if o.customer_id == customer_id and o.request_id == request_id
            ),
            None,
        )

    async def list(
        self, customer_id: str | None, limit: int, after: PageCursor | None
    ) -> list[Order]:
        orders = sorted(self.rows.values(), key=lambda o: (o.created_at, o.order_id), reverse=True)
        if customer_id:
            orders = [o for o in orders if o.customer_id == customer_id]
        if after:
            orders = [
                o for o in orders if (o.created_at, o.order_id) < (after.created_at, after.order_id)
            ]
        return orders[:limit]


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.orders = FakeOrders()
        self.published: list[object] = []
        self.commits = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1
        for order in self.orders.rows.values():
            self.published.extend(order.events)
            order.events.clear()


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


async def test_policies_confirm_then_complete() -> None:
    uow = FakeUnitOfWork()
    order = await handlers.place_order(place(), uow, new_id=lambda: "o-1")
    await handlers.confirm_order_on_schedule_confirmed(handlers.ScheduleConfirmed("o-1"), uow)
    assert order.status is OrderStatus.CONFIRMED
    await handlers.complete_order_on_class_result_registered(
        handlers.ClassResultRegistered("o-1"), uow
    )
    assert order.status is OrderStatus.COMPLETED


async def test_cancelling_another_customers_order_is_refused_and_changes_nothing() -> None:
    uow = FakeUnitOfWork()
    order = await handlers.place_order(place(), uow, new_id=lambda: "o-1")
    with pytest.raises(PermissionDenied):
        await handlers.cancel_order(
            handlers.CancelOrder("o-1", "", Caller("bob", Role.CUSTOMER)), uow
        )
    assert order.status is OrderStatus.PLACED
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
