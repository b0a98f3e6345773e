"""Use cases: one function per command or policy."""

from __future__ import annotations

from dataclasses import dataclass

from ptkit.ports import Clock, utcnow
from trainer_svc.application.ports import UnitOfWork
from trainer_svc.domain.model import Schedule, ScheduleStatus, TimeSlot


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
    trainer_id: str
    slot: TimeSlot


@dataclass(frozen=True)
class RegisterClassResult:
    order_id: str
    trainer_id: str
    result: str


@dataclass(frozen=True)
class CancelSchedule:
    order_id: str
    reason: str


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
    async with uow:
        schedule = await uow.schedules.get(cmd.order_id)
        booked = await uow.schedules.booked_overlapping(
            schedule.trainer_id, cmd.slot, schedule.order_id
        )
        schedule.confirm(cmd.trainer_id, cmd.slot, booked, now())
        await uow.commit()
        return schedule


async def register_class_result(
    cmd: RegisterClassResult, uow: UnitOfWork, now: Clock = utcnow
) -> Schedule:
    async with uow:
        schedule = await uow.schedules.get(cmd.order_id)
        schedule.register_result(cmd.trainer_id, cmd.result, now())
        await uow.commit()
        return schedule


async def cancel_schedule(cmd: CancelSchedule, uow: UnitOfWork, now: Clock = utcnow) -> Schedule:
    """A manager cancels the order's schedule. Cancelling an order that has no schedule
    yet records a cancelled one, so the trainer assignment still on its way is ignored."""
    async with uow:
        schedule = await uow.schedules.find(cmd.order_id)
        if schedule is None:
            schedule = Schedule.cancelled_before_assignment(
                order_id=cmd.order_id, reason=cmd.reason, now=now()
            )
            await uow.schedules.add(schedule)
        else:
            schedule.cancel(cmd.reason, now())
        await uow.commit()
        return schedule


async def get_schedule(order_id: str, uow: UnitOfWork) -> Schedule:
    async with uow:
        return await uow.schedules.get(order_id)


async def list_schedules(
    trainer_id: str | None, status: ScheduleStatus | None, uow: UnitOfWork
) -> list[Schedule]:
    async with uow:
        return await uow.schedules.list(trainer_id, status)
