"""Use cases: fold an event into the views; read views, results and notifications."""

from __future__ import annotations

from status_svc.application.bell import NotificationBell
from status_svc.application.ports import StatusFilter, UnitOfWork
from status_svc.domain.events import ClassResultRegistered, ObservedEvent
from status_svc.domain.model import ClassResult, OrderStatusView
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
        await uow.commit()
    bell.ring()


async def get_order_status(order_id: str, uow: UnitOfWork) -> OrderStatusView:
    async with uow:
        return await uow.views.get(order_id)


async def list_order_statuses(wanted: StatusFilter, uow: UnitOfWork) -> list[OrderStatusView]:
    async with uow:
        return await uow.views.list(wanted)


async def list_class_results(customer_id: str, uow: UnitOfWork) -> list[ClassResult]:
    async with uow:
        views = await uow.views.with_class_results(customer_id)
    return [ClassResult.of(view) for view in views]


async def list_notifications(customer_id: str, uow: UnitOfWork) -> list[Notification]:
    async with uow:
        return await uow.notifications.list(customer_id)
