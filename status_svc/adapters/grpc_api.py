"""Inbound gRPC adapter: requests -> queries (with the caller), views -> proto."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import grpc

from ptkit.auth import current_caller
from ptkit.domain import InvalidValue
from ptkit.events import to_timestamp
from ptkit.paging import PageTokens
from ptkit.validation import require_not_negative, require_uuid
from ptplatform.manager.v1 import manager_service_pb2 as manager_pb
from ptplatform.order.v1 import order_service_pb2 as order_pb
from ptplatform.status.v1 import status_service_pb2 as pb
from ptplatform.status.v1 import status_service_pb2_grpc as pb_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer_pb
from status_svc.adapters.sql import SqlStatusUnitOfWork
from status_svc.application import handlers
from status_svc.application.bell import NotificationBell
from status_svc.application.watch import (
    POLL_SECONDS,
    NotificationFeed,
    WatchLimits,
    WatchSlots,
)
from status_svc.domain.model import (
    AssignmentStatus,
    ClassResult,
    OrderStatus,
    OrderStatusView,
    ScheduleStatus,
)
from status_svc.domain.notifications import Notification, NotificationKind

StatusT = TypeVar("StatusT", bound=enum.Enum)

_ORDER_STATUS = {s: order_pb.OrderStatus.Value(f"ORDER_STATUS_{s.value}") for s in OrderStatus}
_ORDER_STATUS_OF = {number: status for status, number in _ORDER_STATUS.items()}
_ASSIGNMENT_STATUS = {
    s: manager_pb.AssignmentStatus.Value(f"ASSIGNMENT_STATUS_{s.value}") for s in AssignmentStatus
}
_ASSIGNMENT_STATUS_OF = {number: status for status, number in _ASSIGNMENT_STATUS.items()}
_SCHEDULE_STATUS = {
    s: trainer_pb.ScheduleStatus.Value(f"SCHEDULE_STATUS_{s.value}") for s in ScheduleStatus
}
_NOTIFICATION_KIND = {
    k: pb.NotificationKind.Value(f"NOTIFICATION_KIND_{k.value}") for k in NotificationKind
}
UNSPECIFIED = 0


def _number(numbers: Mapping[Any, int], status: enum.Enum | None) -> int:
    return UNSPECIFIED if status is None else numbers[status]


def view_to_proto(view: OrderStatusView) -> pb.OrderStatus:
    return pb.OrderStatus(
        order_id=view.order_id,
        customer_id=view.customer_id,
        customer_name=view.customer_name,
        class_name=view.class_name,
        order_status=_number(_ORDER_STATUS, view.order_status),
        assignment_status=_number(_ASSIGNMENT_STATUS, view.assignment_status),
        trainer_id=view.trainer_id,
        trainer_name=view.trainer_name,
        schedule_status=_number(_SCHEDULE_STATUS, view.schedule_status),
        start_time=to_timestamp(view.start_time),
        class_result=view.class_result,
        update_time=to_timestamp(view.updated_at),
        cancellation_refused_reason=view.cancellation_refused_reason,
    )


def result_to_proto(result: ClassResult) -> pb.ClassResult:
    return pb.ClassResult(
        order_id=result.order_id,
        customer_id=result.customer_id,
        class_name=result.class_name,
        trainer_id=result.trainer_id,
        trainer_name=result.trainer_name,
        result=result.result,
        record_time=to_timestamp(result.recorded_at),
    )


def notification_to_proto(notification: Notification) -> pb.Notification:
    return pb.Notification(
        notification_id=notification.notification_id,
        customer_id=notification.customer_id,
        order_id=notification.order_id,
        message=notification.message,
        create_time=to_timestamp(notification.created_at),
        kind=_NOTIFICATION_KIND[notification.kind],
        sequence=notification.sequence,
    )


def enum_filter(field: str, number: int, of: Mapping[int, StatusT]) -> StatusT | None:
    """A list filter's enum value: None when unset, refused when not one of ``of``."""
    if number == UNSPECIFIED:
        return None
    if number not in of:
        known = field.replace("_", " ")
        raise InvalidValue(f"{field} {number} is not a known {known}", field=field)
    return of[number]


class StatusServiceAdapter(pb_grpc.StatusServiceServicer):
    """``new_uow`` gives every call a unit of work of its own (calls run concurrently);
    ``closing`` is set when the server shuts down, which ends open watches. All watches
    share one feed (one poll of the notifications table for all of them) and the
    replica's watch limits."""

    def __init__(
        self,
        new_uow: Callable[[], SqlStatusUnitOfWork],
        page_tokens: PageTokens,
        bell: NotificationBell,
        closing: asyncio.Event,
        poll_seconds: float = POLL_SECONDS,
        watch_limits: WatchLimits | None = None,
    ) -> None:
        self.new_uow = new_uow
        self.page_tokens = page_tokens
        self.closing = closing
        self.feed = NotificationFeed(new_uow, bell, poll_seconds)
        self.watch_slots = WatchSlots(watch_limits or WatchLimits())

    async def GetOrderStatus(
        self, request: pb.GetOrderStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.OrderStatus:
        query = handlers.GetOrderStatus(
            require_uuid("order_id", request.order_id), current_caller()
        )
        return view_to_proto(await handlers.get_order_status(query, self.new_uow()))

    async def ListOrderStatuses(
        self, request: pb.ListOrderStatusesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrderStatusesResponse:
        query = handlers.ListOrderStatuses(
            caller=current_caller(),
            customer_id=request.customer_id,
            trainer_id=request.trainer_id,
            order_status=enum_filter("order_status", request.order_status, _ORDER_STATUS_OF),
            assignment_status=enum_filter(
                "assignment_status", request.assignment_status, _ASSIGNMENT_STATUS_OF
            ),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        page = await handlers.list_order_statuses(query, self.new_uow(), self.page_tokens)
        return pb.ListOrderStatusesResponse(
            statuses=[view_to_proto(view) for view in page.items],
            next_page_token=page.next_page_token,
        )

    async def ListClassResults(
        self, request: pb.ListClassResultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClassResultsResponse:
        query = handlers.ListClassResults(
            request.customer_id, current_caller(), request.page_size, request.page_token
        )
        page = await handlers.list_class_results(query, self.new_uow(), self.page_tokens)
        return pb.ListClassResultsResponse(
            results=[result_to_proto(result) for result in page.items],
            next_page_token=page.next_page_token,
        )

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListNotificationsResponse:
        query = handlers.ListNotifications(
            request.customer_id, current_caller(), request.page_size, request.page_token
        )
        page = await handlers.list_notifications(query, self.new_uow(), self.page_tokens)
        return pb.ListNotificationsResponse(
            notifications=[notification_to_proto(n) for n in page.items],
            next_page_token=page.next_page_token,
        )

    async def WatchNotifications(
        self, request: pb.WatchNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Notification]:
        """Streams the notifications after the resume point ``after_sequence`` (what a
        reconnecting watcher missed), then new ones; without it, those recorded after the
        call started. The initial metadata is sent once the starting point is fixed: a
        client that awaits it knows that every later notification will reach it."""
        after = (
            require_not_negative("after_sequence", request.after_sequence)
            if request.HasField("after_sequence")
            else None
        )
        query = handlers.WatchNotifications(request.customer_id, current_caller(), after)
        watch = handlers.watch_notifications(
            query, self.new_uow(), self.feed, self.watch_slots, self.closing
        )
        async for notification in watch.notifications(
            ready=lambda: context.send_initial_metadata(())
        ):
            yield notification_to_proto(notification)
