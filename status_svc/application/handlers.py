"""Use cases: fold an event into the views; read views, results and notifications."""

from __future__ import annotations

from status_svc.application.bell import NotificationBell
from status_svc.application.ports import StatusFilter, UnitOfWork
from status_svc.domain.events import ClassResultRegistered, ObservedEvent
from status_svc.domain.model import ClassResult, OrderStatusView
from status_svc.domain.notifications import Notification


async def project_event(event: ObservedEvent, uow: UnitOfWork, bell: NotificationBell) -> None:
    """Fold one event into its order's view; a class result also notifies the customer."""
    notification = None
    async with uow:
        view = await uow.views.find(event.order_id)
        if view is None:
            view = OrderStatusView(order_id=event.order_id)
            view.observe(event)
            await uow.views.add(view)
        else:
            view.observe(event)
        if isinstance(event, ClassResultRegistered):
            notification = Notification.of_result(event, view)
            await uow.notifications.add(notification)
        await uow.commit()
    if notification is not None:
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
