"""Use cases: fold an event into the views; read views, results and notifications."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ptkit.auth import Caller
from ptkit.paging import Page, PageTokens
from status_svc.application import access
from status_svc.application.bell import NotificationBell
from status_svc.application.ports import (
    CLASS_RESULT_PAGES,
    NOTIFICATION_PAGES,
    VIEW_PAGES,
    UnitOfWork,
)
from status_svc.application.watch import NotificationFeed, NotificationWatch, WatchSlots
from status_svc.domain.events import CancellationRefused, ClassResultRegistered, ObservedEvent
from status_svc.domain.model import AssignmentStatus, ClassResult, OrderStatus, OrderStatusView
from status_svc.domain.notifications import Notification


async def _fold(event: ObservedEvent, uow: UnitOfWork) -> OrderStatusView:
    view = await uow.views.find(event.order_id)
    if view is None:
        view = OrderStatusView(order_id=event.order_id)
        view.observe(event)
        await uow.views.add(view)
    else:
        view.observe(event)
    return view


async def update_view_on_event(event: ObservedEvent, uow: UnitOfWork) -> None:
    """Fold one event into its order's view."""
    async with uow:
        await _fold(event, uow)
        await uow.commit()


async def notify_customer_on_class_result_registered(
    event: ClassResultRegistered, uow: UnitOfWork, bell: NotificationBell
) -> None:
    """Fold the class result into the view and tell the customer (recorded once, however
    often the event arrives); this replica's watchers wake at once."""
    async with uow:
        view = await _fold(event, uow)
        await uow.notifications.add(Notification.of_result(event, view))
        uow.after_commit(bell.ring)
        await uow.commit()


async def notify_customer_on_cancellation_refused(
    event: CancellationRefused, uow: UnitOfWork, bell: NotificationBell
) -> None:
    """Record in the view that the cancellation came too late and tell the customer
    (recorded once, however often the event arrives); ADR 0007."""
    async with uow:
        view = await _fold(event, uow)
        await uow.notifications.add(Notification.of_refused_cancellation(event, view))
        uow.after_commit(bell.ring)
        await uow.commit()


@dataclass(frozen=True)
class GetOrderStatus:
    order_id: str
    caller: Caller


@dataclass(frozen=True)
class ListOrderStatuses:
    caller: Caller
    customer_id: str | None = None
    trainer_id: str | None = None
    order_status: OrderStatus | None = None
    """None (or "") matches any; customers and trainers see only their own."""
    assignment_status: AssignmentStatus | None = None
    page_size: int = 0
    """0 asks for the default page size."""
    page_token: str = ""
    """The next_page_token of the previous page; "" for the first page."""


@dataclass(frozen=True)
class ListClassResults:
    customer_id: str
    """"" means the caller's own (a customer)."""
    caller: Caller
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class ListNotifications:
    customer_id: str
    """"" means the caller's own (a customer)."""
    caller: Caller
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class WatchNotifications:
    customer_id: str
    """"" means the caller's own (a customer)."""
    caller: Caller
    after_sequence: int | None = None
    """The resume point: the sequence of the last notification the watcher received."""


async def get_order_status(query: GetOrderStatus, uow: UnitOfWork) -> OrderStatusView:
    async with uow:
        view = await uow.views.get(query.order_id)
    access.may_read(query.caller, view)
    return view


async def list_order_statuses(
    query: ListOrderStatuses, uow: UnitOfWork, tokens: PageTokens
) -> Page[OrderStatusView]:
    wanted = access.status_filter(
        query.caller,
        query.customer_id,
        query.trainer_id,
        query.order_status,
        query.assignment_status,
    )
    page = tokens.request(VIEW_PAGES, query.page_size, query.page_token, **wanted.as_filters())
    async with uow:
        return tokens.page(page, await uow.views.list(wanted, page))


async def list_class_results(
    query: ListClassResults, uow: UnitOfWork, tokens: PageTokens
) -> Page[ClassResult]:
    customer_id = access.customer_to_read(query.caller, query.customer_id)
    page = tokens.request(
        CLASS_RESULT_PAGES, query.page_size, query.page_token, customer_id=customer_id
    )
    async with uow:
        views = tokens.page(page, await uow.views.with_class_results(customer_id, page))
    return Page([ClassResult.of(view) for view in views.items], views.next_page_token)


async def list_notifications(
    query: ListNotifications, uow: UnitOfWork, tokens: PageTokens
) -> Page[Notification]:
    customer_id = access.customer_to_read(query.caller, query.customer_id)
    page = tokens.request(
        NOTIFICATION_PAGES, query.page_size, query.page_token, customer_id=customer_id
    )
    async with uow:
        return tokens.page(page, await uow.notifications.list(customer_id, page))


def watch_notifications(
    query: WatchNotifications,
    uow: UnitOfWork,
    feed: NotificationFeed,
    slots: WatchSlots,
    closing: asyncio.Event,
) -> NotificationWatch:
    """A watch of the customer's notifications after the resume point, or, without one,
    recorded from its start on; it holds one of the caller's watch slots while it runs
    and ends when the caller's token expires."""
    customer_id = access.customer_to_read(query.caller, query.customer_id)
    return NotificationWatch(
        customer_id,
        uow,
        feed,
        closing,
        after=query.after_sequence,
        until=query.caller.expires_at,
        slot=slots.hold(query.caller),
    )
