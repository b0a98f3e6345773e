"""Use cases: one function per command or policy."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from manager_svc.application import access
from manager_svc.application.ports import (
    ASSIGNMENT_PAGES,
    TRAINER_PAGES,
    ScheduleCanceller,
    ScheduleCancelRefused,
    UnitOfWork,
)
from manager_svc.domain.model import SCHEDULE_CANCELLED, Assignment, AssignmentStatus, bounded_text
from manager_svc.domain.roster import Trainer, least_loaded
from ptkit.auth import Caller
from ptkit.domain import ConcurrencyConflict
from ptkit.idempotency import create_once
from ptkit.paging import Page, PageTokens
from ptkit.ports import Clock, utcnow
from ptkit.validation import require_request_id


def new_trainer_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class RegisterTrainer:
    name: str
    caller: Caller
    request_id: str = ""
    """The idempotency key (a UUID): the same request_id of the same manager registers
    the trainer once; "" for none."""


@dataclass(frozen=True)
class ListTrainers:
    caller: Caller
    page_size: int = 0
    """0 asks for the default page size."""
    page_token: str = ""
    """The next_page_token of the previous page; "" for the first page."""


@dataclass(frozen=True)
class AssignTrainer:
    order_id: str
    trainer_id: str
    caller: Caller


@dataclass(frozen=True)
class GetAssignment:
    order_id: str
    caller: Caller


@dataclass(frozen=True)
class ListAssignments:
    status: AssignmentStatus | None
    trainer_id: str
    """"" lists the caller's own (a trainer) or everyone's (a manager)."""
    caller: Caller
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class OrderPlaced:
    """order_svc: a customer placed an order."""

    order_id: str
    customer_id: str
    class_name: str
    preferred_start: datetime | None


@dataclass(frozen=True)
class OrderCancelled:
    """order_svc: the customer cancelled the order."""

    order_id: str
    reason: str


@dataclass(frozen=True)
class ScheduleConfirmed:
    """trainer_svc: a trainer confirmed the order's schedule."""

    order_id: str
    trainer_id: str


async def register_trainer(
    cmd: RegisterTrainer,
    uow: UnitOfWork,
    new_id: Callable[[], str] = new_trainer_id,
    now: Clock = utcnow,
) -> Trainer:
    """Register a trainer; the same request_id from the same manager returns the same
    trainer."""
    access.may_manage(cmd.caller)
    request_id = require_request_id(cmd.request_id)
    manager = cmd.caller.subject

    async def registered_before() -> Trainer | None:
        return await uow.trainers.find_by_request(manager, request_id)

    async def register() -> Trainer:
        trainer = Trainer.register(
            trainer_id=new_id(),
            name=cmd.name,
            now=now(),
            registered_by=manager,
            request_id=request_id,
        )
        await uow.trainers.add(trainer)
        await uow.commit()
        return trainer

    return await create_once(uow, request_id, registered_before, register)


async def list_trainers(query: ListTrainers, uow: UnitOfWork, tokens: PageTokens) -> Page[Trainer]:
    access.may_read(query.caller)
    page = tokens.request(TRAINER_PAGES, query.page_size, query.page_token)
    async with uow:
        return tokens.page(page, await uow.trainers.list(page))


async def assign_trainer(cmd: AssignTrainer, uow: UnitOfWork, now: Clock = utcnow) -> Assignment:
    access.may_manage(cmd.caller)
    async with uow:
        assignment = await uow.assignments.get(cmd.order_id)
        trainer = await uow.trainers.get(cmd.trainer_id)
        assignment.assign(trainer, now())
        await uow.commit()
        return assignment


async def get_assignment(query: GetAssignment, uow: UnitOfWork) -> Assignment:
    access.may_read(query.caller)
    async with uow:
        assignment = await uow.assignments.get(query.order_id)
    access.may_read_assignment(query.caller, assignment)
    return assignment


async def list_assignments(
    query: ListAssignments, uow: UnitOfWork, tokens: PageTokens
) -> Page[Assignment]:
    trainer_id = access.trainer_to_list(query.caller, query.trainer_id)
    status = None if query.status is None else query.status.value
    page = tokens.request(
        ASSIGNMENT_PAGES, query.page_size, query.page_token, status=status, trainer_id=trainer_id
    )
    async with uow:
        return tokens.page(page, await uow.assignments.list(query.status, trainer_id, page))


async def open_assignment_on_order_placed(
    event: OrderPlaced, uow: UnitOfWork, auto_assign: bool = False, now: Clock = utcnow
) -> Assignment:
    """Open the order's assignment; with ``auto_assign`` give it at once to the
    least-loaded active trainer. An assignment cancelled before this event arrived stays
    cancelled."""
    async with uow:
        assignment = await uow.assignments.find(event.order_id)
        if assignment is not None:
            assignment.record_placement(
                customer_id=event.customer_id,
                class_name=event.class_name,
                preferred_start=event.preferred_start,
                now=now(),
            )
        else:
            assignment = Assignment.open(
                order_id=event.order_id,
                customer_id=event.customer_id,
                class_name=event.class_name,
                preferred_start=event.preferred_start,
                now=now(),
            )
            if auto_assign:
                trainer = least_loaded(
                    await uow.trainers.list(), await uow.assignments.load_per_trainer()
                )
                if trainer is not None:
                    assignment.assign(trainer, now())
            await uow.assignments.add(assignment)
        await uow.commit()
        return assignment


async def confirm_assignment_on_schedule_confirmed(
    event: ScheduleConfirmed, uow: UnitOfWork, now: Clock = utcnow
) -> Assignment:
    async with uow:
        assignment = await uow.assignments.get(event.order_id)
        trainer_name = assignment.trainer_name
        if event.trainer_id and event.trainer_id != assignment.trainer_id:
            trainer = await uow.trainers.find(event.trainer_id)
            trainer_name = trainer.name if trainer is not None else ""
        assignment.confirm(event.trainer_id, trainer_name, now())
        await uow.commit()
        return assignment


async def cancel_assignment_on_order_cancelled(
    event: OrderCancelled, uow: UnitOfWork, schedules: ScheduleCanceller, now: Clock = utcnow
) -> Assignment:
    """Cancel the assignment and the trainer's schedule: both happen or neither.

    trainer_svc is asked first, outside any database transaction, so no lock is held
    while it answers. If it cannot be asked (ScheduleCancelUnavailable) nothing was
    written and the event is redelivered later; CancelSchedule is idempotent, so asking
    again then, or after a failed commit, is safe. If it refuses (the class was already
    held) neither happens: the assignment keeps its status, records the refusal and
    publishes CancellationRefused, so order_svc holds the order and the customer is told
    (ADR 0007); asking again would not change the answer. The assignment changes only if
    it is still the one trainer_svc was asked about; if it changed meanwhile,
    ConcurrencyConflict sends the event round again.
    """
    async with uow:
        asked_about = await uow.assignments.find(event.order_id)
    refusal: ScheduleCancelRefused | None = None
    note = ""
    if asked_about is not None and asked_about.holds_schedule:
        try:
            await schedules.cancel_schedule(event.order_id, bounded_text(event.reason))
            note = SCHEDULE_CANCELLED
        except ScheduleCancelRefused as refused:
            refusal = refused
    async with uow:
        assignment = await uow.assignments.find(event.order_id)
        if assignment is None:
            assignment = Assignment.cancelled_before_placed(
                order_id=event.order_id, reason=event.reason, now=now()
            )
            await uow.assignments.add(assignment)
        elif asked_about is None or assignment.version != asked_about.version:
            raise ConcurrencyConflict(
                f"assignment of order {event.order_id} changed while its schedule was cancelled"
            )
        elif refusal is not None:
            assignment.refuse_cancellation(str(refusal), now())
        else:
            assignment.cancel(event.reason, now(), schedule_note=note)
        await uow.commit()
        return assignment
