"""Use cases: one function per command or policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ptkit.auth import Caller
from ptkit.paging import Page, PageTokens
from ptkit.ports import Clock, utcnow
from trainer_svc.application import access
from trainer_svc.application.ports import SCHEDULE_PAGES, UnitOfWork
from trainer_svc.domain.model import (
    ClassResult,
    Schedule,
    ScheduleStatus,
    TimeSlot,
    cancel_reason,
)


@dataclass(frozen=True)
class TrainerAssigned:
    """manager_svc assigned (or re-assigned) a trainer to an order; ``aggregate_version``
    is the assignment's version, so a late, older assignment is ignored."""

    order_id: str
    trainer_id: str
    customer_id: str
    class_name: str
    aggregate_version: int


@dataclass(frozen=True)
class ConfirmSchedule:
    order_id: str
    caller: Caller
    start_time: datetime | None
    duration_minutes: int


@dataclass(frozen=True)
class RegisterClassResult:
    order_id: str
    caller: Caller
    result: str


@dataclass(frozen=True)
class CancelSchedule:
    order_id: str
    reason: str
    caller: Caller


@dataclass(frozen=True)
class GetSchedule:
    order_id: str
    caller: Caller


@dataclass(frozen=True)
class ListSchedules:
    trainer_id: str
    """"" lists the caller's own (a trainer) or everyone's (a manager)."""
    status: ScheduleStatus | None
    caller: Caller
    page_size: int = 0
    """0 asks for the default page size."""
    page_token: str = ""
    """The next_page_token of the previous page; "" for the first page."""


async def open_schedule_on_trainer_assigned(
    event: TrainerAssigned, uow: UnitOfWork, now: Clock = utcnow
) -> None:
    """Ask the assigned trainer to confirm a schedule; a cancelled order stays cancelled."""
    async with uow:
        schedule = await uow.schedules.find(event.order_id)
        if schedule is None:
            schedule = Schedule.request(
                order_id=event.order_id,
                trainer_id=event.trainer_id,
                customer_id=event.customer_id,
                class_name=event.class_name,
                assignment_version=event.aggregate_version,
                now=now(),
            )
            await uow.schedules.add(schedule)
        else:
            schedule.reassign(
                trainer_id=event.trainer_id,
                customer_id=event.customer_id,
                class_name=event.class_name,
                assignment_version=event.aggregate_version,
                now=now(),
            )
        await uow.commit()


async def confirm_schedule(cmd: ConfirmSchedule, uow: UnitOfWork, now: Clock = utcnow) -> Schedule:
    access.may_work_on_schedules(cmd.caller)
    slot = TimeSlot.of(cmd.start_time, cmd.duration_minutes)
    async with uow:
        schedule = await uow.schedules.get(cmd.order_id)
        access.may_use(cmd.caller, schedule)
        booked = await uow.schedules.booked_overlapping(
            schedule.trainer_id, slot, schedule.order_id
        )
        schedule.confirm(cmd.caller.subject, slot, booked, now())
        await uow.commit()
        return schedule


async def register_class_result(
    cmd: RegisterClassResult, uow: UnitOfWork, now: Clock = utcnow
) -> Schedule:
    access.may_work_on_schedules(cmd.caller)
    result = ClassResult(cmd.result)  # a bad result is refused even for an unknown order
    async with uow:
        schedule = await uow.schedules.get(cmd.order_id)
        access.may_use(cmd.caller, schedule)
        schedule.register_result(cmd.caller.subject, result, now())
        await uow.commit()
        return schedule


async def cancel_schedule(cmd: CancelSchedule, uow: UnitOfWork, now: Clock = utcnow) -> Schedule:
    """A manager, or manager_svc on OrderCancelled, cancels the order's schedule.
    manager_svc cancelling an order that has no schedule yet records a cancelled one, so the
    trainer assignment still on its way is ignored; anyone else gets ScheduleNotFound."""
    access.may_cancel_schedules(cmd.caller)
    cancel_reason(cmd.reason)  # a bad reason is refused even for an unknown order
    async with uow:
        schedule = await uow.schedules.find(cmd.order_id)
        if schedule is None:
            access.may_cancel_before_assignment(cmd.caller, cmd.order_id)
            schedule = Schedule.cancelled_before_assignment(
                order_id=cmd.order_id, reason=cmd.reason, now=now()
            )
            await uow.schedules.add(schedule)
        else:
            schedule.cancel(cmd.reason, now())
        await uow.commit()
        return schedule


async def get_schedule(query: GetSchedule, uow: UnitOfWork) -> Schedule:
    access.may_read_schedules(query.caller)
    async with uow:
        schedule = await uow.schedules.get(query.order_id)
    access.may_use(query.caller, schedule)
    return schedule


async def list_schedules(
    query: ListSchedules, uow: UnitOfWork, tokens: PageTokens
) -> Page[Schedule]:
    trainer_id = access.trainer_to_list(query.caller, query.trainer_id)
    status = None if query.status is None else query.status.value
    page = tokens.request(
        SCHEDULE_PAGES, query.page_size, query.page_token, trainer_id=trainer_id, status=status
    )
    async with uow:
        return tokens.page(page, await uow.schedules.list(trainer_id, query.status, page))
