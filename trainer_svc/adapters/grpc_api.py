"""Inbound gRPC adapter: proto <-> commands, caller authorization, domain -> proto."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import grpc

from ptkit.auth import Role, current_caller
from ptkit.domain import InvalidValue
from ptkit.events import from_timestamp, to_timestamp
from ptkit.validation import require_principal_id, require_text, require_uuid
from ptplatform.trainer.v1 import trainer_service_pb2 as pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from trainer_svc.application import handlers
from trainer_svc.application.ports import UnitOfWork
from trainer_svc.domain.model import (
    MAX_REASON_LENGTH,
    MAX_RESULT_LENGTH,
    Schedule,
    ScheduleStatus,
    TimeSlot,
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
        class_result=schedule.class_result,
        cancel_reason=schedule.cancel_reason,
        update_time=to_timestamp(schedule.updated_at),
        version=schedule.version,
    )


def start_time_of(request: pb.ConfirmScheduleRequest) -> datetime | None:
    try:
        return from_timestamp(request.start_time, request.HasField("start_time"))
    except ValueError as error:
        raise InvalidValue(f"start_time is invalid: {error}") from None


def status_filter(value: int) -> ScheduleStatus | None:
    """The ListSchedules status filter; SCHEDULE_STATUS_UNSPECIFIED means any status."""
    if value == pb.SCHEDULE_STATUS_UNSPECIFIED:
        return None
    if value not in _STATUS_FILTER:
        raise InvalidValue(f"status {value} is not a schedule status")
    return _STATUS_FILTER[value]


class TrainerServiceAdapter(pb_grpc.TrainerServiceServicer):
    """Each call gets a unit of work of its own: one holds one transaction at a time, and
    calls run concurrently."""

    def __init__(self, new_uow: Callable[[], UnitOfWork]) -> None:
        self.new_uow = new_uow

    async def _readable_schedule(self, order_id: str) -> Schedule:
        """The schedule, if the caller is its trainer or a manager."""
        schedule = await handlers.get_schedule(order_id, self.new_uow())
        current_caller().require_trainer_self_or_manager(schedule.trainer_id)
        return schedule

    async def ConfirmSchedule(
        self, request: pb.ConfirmScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        caller = current_caller()
        caller.require(Role.TRAINER)
        order_id = require_uuid("order_id", request.order_id)
        slot = TimeSlot.of(start_time_of(request), request.duration_minutes)
        await self._readable_schedule(order_id)
        command = handlers.ConfirmSchedule(order_id=order_id, trainer_id=caller.subject, slot=slot)
        return schedule_to_proto(await handlers.confirm_schedule(command, self.new_uow()))

    async def RegisterClassResult(
        self, request: pb.RegisterClassResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        caller = current_caller()
        caller.require(Role.TRAINER)
        order_id = require_uuid("order_id", request.order_id)
        result = require_text("result", request.result, max_length=MAX_RESULT_LENGTH)
        await self._readable_schedule(order_id)
        command = handlers.RegisterClassResult(
            order_id=order_id, trainer_id=caller.subject, result=result
        )
        return schedule_to_proto(await handlers.register_class_result(command, self.new_uow()))

    async def CancelSchedule(
        self, request: pb.CancelScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        current_caller().require(Role.MANAGER)
        order_id = require_uuid("order_id", request.order_id)
        reason = require_text(
            "reason", request.reason, max_length=MAX_REASON_LENGTH, required=False
        )
        command = handlers.CancelSchedule(order_id=order_id, reason=reason)
        return schedule_to_proto(await handlers.cancel_schedule(command, self.new_uow()))

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        current_caller().require(Role.TRAINER, Role.MANAGER)
        return schedule_to_proto(
            await self._readable_schedule(require_uuid("order_id", request.order_id))
        )

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSchedulesResponse:
        caller = current_caller()
        caller.require(Role.TRAINER, Role.MANAGER)
        trainer_id = request.trainer_id or (caller.subject if caller.role is Role.TRAINER else "")
        if trainer_id:
            require_principal_id("trainer_id", trainer_id)
            caller.require_trainer_self_or_manager(trainer_id)
        schedules = await handlers.list_schedules(
            trainer_id or None, status_filter(request.status), self.new_uow()
        )
        return pb.ListSchedulesResponse(
            schedules=[schedule_to_proto(schedule) for schedule in schedules]
        )
