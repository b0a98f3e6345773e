"""Use cases: one function per command or policy."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from order_svc.application import access
from order_svc.application.ports import ORDER_PAGES, UnitOfWork
from order_svc.domain.model import Order
from ptkit.auth import Caller
from ptkit.idempotency import create_once
from ptkit.paging import Page, PageTokens
from ptkit.ports import Clock, utcnow
from ptkit.validation import require_request_id


def new_order_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    customer_name: str
    class_name: str
    preferred_start: datetime | None
    request_id: str
    caller: Caller
    """customer_id "" places the order for the caller (a customer)."""


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    reason: str
    caller: Caller


@dataclass(frozen=True)
class GetOrder:
    order_id: str
    caller: Caller


@dataclass(frozen=True)
class ListOrders:
    customer_id: str
    """"" lists the caller's own (a customer) or everyone's (a manager)."""
    caller: Caller
    page_size: int
    """0 asks for the default page size."""
    page_token: str
    """The next_page_token of the previous page; "" for the first page."""


@dataclass(frozen=True)
class ScheduleConfirmed:
    """trainer_svc: the trainer confirmed the order's schedule."""

    order_id: str


@dataclass(frozen=True)
class ClassResultRegistered:
    """trainer_svc: the class was held and its result registered."""

    order_id: str


@dataclass(frozen=True)
class CancellationRefused:
    """manager_svc: the order's cancellation was refused, the class was already held."""

    order_id: str
    reason: str


async def place_order(
    cmd: PlaceOrder, uow: UnitOfWork, new_id: Callable[[], str] = new_order_id, now: Clock = utcnow
) -> Order:
    """Place an order; the same request_id from the same customer returns the same order."""
    customer_id = access.customer_to_order_for(cmd.caller, cmd.customer_id)
    request_id = require_request_id(cmd.request_id)

    async def placed_before() -> Order | None:
        return await uow.orders.find_by_request(customer_id, request_id)

    async def place() -> Order:
        order = Order.place(
            order_id=new_id(),
            customer_id=customer_id,
            customer_name=cmd.customer_name,
            class_name=cmd.class_name,
            preferred_start=cmd.preferred_start,
            request_id=request_id,
            now=now(),
        )
        await uow.orders.add(order)
        await uow.commit()
        return order

    return await create_once(uow, request_id, placed_before, place)


async def cancel_order(cmd: CancelOrder, uow: UnitOfWork, now: Clock = utcnow) -> Order:
    async with uow:
        order = await uow.orders.get(cmd.order_id)
        access.may_use(cmd.caller, order)
        order.cancel(cmd.reason, now())
        await uow.commit()
        return order


async def get_order(query: GetOrder, uow: UnitOfWork) -> Order:
    async with uow:
        order = await uow.orders.get(query.order_id)
    access.may_use(query.caller, order)
    return order


async def list_orders(query: ListOrders, uow: UnitOfWork, tokens: PageTokens) -> Page[Order]:
    customer_id = access.customer_to_list(query.caller, query.customer_id)
    page = tokens.request(ORDER_PAGES, query.page_size, query.page_token, customer_id=customer_id)
    async with uow:
        return tokens.page(page, await uow.orders.list(customer_id, page))


async def confirm_order_on_schedule_confirmed(
    event: ScheduleConfirmed, uow: UnitOfWork, now: Clock = utcnow
) -> None:
    async with uow:
        order = await uow.orders.get(event.order_id)
        order.confirm(now())
        await uow.commit()


async def complete_order_on_class_result_registered(
    event: ClassResultRegistered, uow: UnitOfWork, now: Clock = utcnow
) -> None:
    async with uow:
        order = await uow.orders.get(event.order_id)
        order.complete(now())
        await uow.commit()


async def complete_order_on_cancellation_refused(
    event: CancellationRefused, uow: UnitOfWork, now: Clock = utcnow
) -> None:
    """The cancellation came too late: the order is held after all (ADR 0007)."""
    async with uow:
        order = await uow.orders.get(event.order_id)
        order.hold_after_refused_cancellation(event.reason, now())
        await uow.commit()
