"""Inbound gRPC adapter: proto -> commands (with the caller), domain -> proto."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import grpc

from ptkit.auth import current_caller
from ptkit.domain import InvalidValue
from ptkit.events import from_timestamp, to_timestamp
from ptkit.paging import PageTokens
from ptkit.validation import require_uuid
from ptplatform.trainer.v1 import trainer_service_pb2 as pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from trainer_svc.application import handlers
from trainer_svc.application.ports import UnitOfWork
from trainer_svc.domain.model import (
    Schedule,
    ScheduleStatus,
)

_STATUS = {
    status: pb.ScheduleStatus.Value(f"SCHEDULE_STATUS_{status.value}") for status in ScheduleStatus
}
_STATUS_FILTER = {number: status for status, number in _STATUS.items()}


def schedule_to_proto(schedule: Schedule) -> pb.Schedule:
    slot = schedule.slot
    return pb.Schedule(
        order_id=schedule.order_id,
        trainer_id=schedule.trainer_id,
        customer_id=schedule.customer_id,
        class_name=schedule.class_name,
        status=_STATUS[schedule.status],
        start_time=to_timestamp(slot.start) if slot else None,
        duration_minutes=slot.duration_minutes if slot else 0,
        class_result=str(schedule.class_result or ""),
        cancel_reason=schedule.cancel_reason,
        update_time=to_timestamp(schedule.updated_at),
        version=schedule.version,
    )


def start_time_of(request: pb.ConfirmScheduleRequest) -> datetime | None:
    try:
        return from_timestamp(request.start_time, request.HasField("start_time"))
    except ValueError as error:
        raise InvalidValue(f"start_time is invalid: {error}", field="start_time") from None


def status_filter(value: int) -> ScheduleStatus | None:
    """The ListSchedules status filter; SCHEDULE_STATUS_UNSPECIFIED means any status."""
    if value == pb.SCHEDULE_STATUS_UNSPECIFIED:
        return None
    if value not in _STATUS_FILTER:
        raise InvalidValue(f"status {value} is not a schedule status", field="status")
    return _STATUS_FILTER[value]


class TrainerServiceAdapter(pb_grpc.TrainerServiceServicer):
    """Each call gets a unit of work of its own: one holds one transaction at a time, and
    calls run concurrently."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], page_tokens: PageTokens) -> None:
        self.new_uow = new_uow
        self.page_tokens = page_tokens

    async def ConfirmSchedule(
        self, request: pb.ConfirmScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        command = handlers.ConfirmSchedule(
            order_id=require_uuid("order_id", request.order_id),
            caller=current_caller(),
            start_time=start_time_of(request),
            duration_minutes=request.duration_minutes,
        )
        return schedule_to_proto(await handlers.confirm_schedule(command, self.new_uow()))

    async def RegisterClassResult(
        self, request: pb.RegisterClassResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        command = handlers.RegisterClassResult(
            order_id=require_uuid("order_id", request.order_id),
            caller=current_caller(),
            result=request.result,
        )
        return schedule_to_proto(await handlers.register_class_result(command, self.new_uow()))

    async def CancelSchedule(
        self, request: pb.CancelScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        command = handlers.CancelSchedule(
            order_id=require_uuid("order_id", request.order_id),
            reason=request.reason,
            caller=current_caller(),
        )
        return schedule_to_proto(await handlers.cancel_schedule(command, self.new_uow()))

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        query = handlers.GetSchedule(require_uuid("order_id", request.order_id), current_caller())
        return schedule_to_proto(await handlers.get_schedule(query, self.new_uow()))

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSchedulesResponse:
        query = handlers.ListSchedules(
            request.trainer_id,
            status_filter(request.status),
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        page = await handlers.list_schedules(query, self.new_uow(), self.page_tokens)
        return pb.ListSchedulesResponse(
            schedules=[schedule_to_proto(schedule) for schedule in page.items],
            next_page_token=page.next_page_token,
        )
