"""manager_svc's SQL adapter against real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from manager_svc.adapters import sql
from manager_svc.application import handlers
from manager_svc.application.ports import ScheduleCancelUnavailable
from manager_svc.domain.model import AssignmentNotFound, AssignmentStatus
from manager_svc.domain.roster import TrainerNotFound
from ptkit.auth import Caller, Role
from ptkit.domain import ConcurrencyConflict
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageTokens
from ptkit.sql import AlreadyHandled, Causation
from ptplatform.events.v1 import events_pb2
from tests.helpers import database, outbox_envelopes

START = datetime(2025, 3, 10, 18, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)
ORDER_1 = "11111111-1111-4111-8111-111111111111"
ORDER_2 = "22222222-2222-4222-8222-222222222222"
ORDER_3 = "33333333-3333-4333-8333-333333333333"

TOKENS = PageTokens.development()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with database(database_url, sql.metadata) as engine:
        yield engine


@pytest.fixture
def uow(engine: AsyncEngine) -> sql.SqlManagerUnitOfWork:
    return sql.SqlManagerUnitOfWork(engine, sql.messaging, EnvelopeSerializer("manager"))


class Unreachable:
    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        raise ScheduleCancelUnavailable("trainer_svc: UNAVAILABLE")


class Accepting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        self.calls.append(order_id)


def placed(order_id: str) -> handlers.OrderPlaced:
    return handlers.OrderPlaced(
        order_id=order_id, customer_id="c-1", class_name="Pilates", preferred_start=START
    )


async def outbox(engine: AsyncEngine) -> list[events_pb2.EventEnvelope]:
    return await outbox_envelopes(engine, sql.messaging)


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()


async def test_a_repeated_registration_is_stored_once(engine: AsyncEngine) -> None:
    request_id = "6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13"

    def new_uow() -> sql.SqlManagerUnitOfWork:
        return sql.SqlManagerUnitOfWork(engine, sql.messaging, EnvelopeSerializer("manager"))

    command = handlers.RegisterTrainer("Kim", MANAGER, request_id=request_id)
    first = await handlers.register_trainer(command, new_uow())
    again = await handlers.register_trainer(command, new_uow())
    other = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), new_uow())
    assert again.trainer_id == first.trainer_id != other.trainer_id
    assert await count(engine, sql.trainers) == 2


async def test_trainers_are_stored_and_listed_by_name(uow: sql.SqlManagerUnitOfWork) -> None:
    await handlers.register_trainer(handlers.RegisterTrainer("Park", MANAGER), uow)
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    listed = (await handlers.list_trainers(handlers.ListTrainers(MANAGER), uow, TOKENS)).items
    assert [t.name for t in listed] == ["Kim", "Park"]
    assert listed[0] == kim


async def test_unknown_trainer_and_assignment_are_not_found(uow: sql.SqlManagerUnitOfWork) -> None:
    with pytest.raises(AssignmentNotFound):
        await handlers.get_assignment(handlers.GetAssignment(ORDER_1, MANAGER), uow)
    async with uow:
        with pytest.raises(TrainerNotFound):
            await uow.trainers.get(ORDER_1)


async def test_assignment_round_trips_with_times_in_utc(uow: sql.SqlManagerUnitOfWork) -> None:
    opened = await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow)
    stored = await handlers.get_assignment(handlers.GetAssignment(ORDER_1, MANAGER), uow)
    assert stored == opened
    assert stored.preferred_start == START and stored.preferred_start.tzinfo is not None


async def test_assigning_writes_trainer_assigned_to_the_outbox(
    uow: sql.SqlManagerUnitOfWork, engine: AsyncEngine
) -> None:
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow)
    assignment = await handlers.assign_trainer(
        handlers.AssignTrainer(ORDER_1, kim.trainer_id, MANAGER), uow
    )
    [envelope] = await outbox(engine)
    assert (envelope.event_type, envelope.source, envelope.order_id) == (
        "TrainerAssigned",
        "manager",
        ORDER_1,
    )
    assert envelope.aggregate_version == assignment.version
    payload = envelope.trainer_assigned
    assert (payload.trainer_id, payload.trainer_name, payload.customer_id, payload.class_name) == (
        kim.trainer_id,
        "Kim",
        "c-1",
        "Pilates",
    )
    assert payload.preferred_start.ToDatetime(tzinfo=UTC) == START


async def test_auto_assign_balances_orders_across_trainers(uow: sql.SqlManagerUnitOfWork) -> None:
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    lee = await handlers.register_trainer(handlers.RegisterTrainer("Lee", MANAGER), uow)
    for order_id in (ORDER_1, ORDER_2, ORDER_3):
        await handlers.open_assignment_on_order_placed(placed(order_id), uow, auto_assign=True)
    chosen = [
        (await handlers.get_assignment(handlers.GetAssignment(o, MANAGER), uow)).trainer_id
        for o in (ORDER_1, ORDER_2, ORDER_3)
    ]
    assert chosen == [kim.trainer_id, lee.trainer_id, kim.trainer_id]
    async with uow:
        assert await uow.assignments.load_per_trainer() == {kim.trainer_id: 2, lee.trainer_id: 1}


async def test_assignments_are_listed_by_status_and_trainer(uow: sql.SqlManagerUnitOfWork) -> None:
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    for order_id in (ORDER_1, ORDER_2, ORDER_3):
        await handlers.open_assignment_on_order_placed(placed(order_id), uow)
    await handlers.assign_trainer(handlers.AssignTrainer(ORDER_2, kim.trainer_id, MANAGER), uow)
    awaiting = (
        await handlers.list_assignments(
            handlers.ListAssignments(AssignmentStatus.AWAITING_TRAINER, "", MANAGER), uow, TOKENS
        )
    ).items
    kims = (
        await handlers.list_assignments(
            handlers.ListAssignments(None, kim.trainer_id, MANAGER), uow, TOKENS
        )
    ).items
    assert sorted(a.order_id for a in awaiting) == [ORDER_1, ORDER_3]
    assert [a.order_id for a in kims] == [ORDER_2]
    assert (
        len(
            (
                await handlers.list_assignments(
                    handlers.ListAssignments(None, "", MANAGER), uow, TOKENS
                )
            ).items
        )
        == 3
    )


async def test_assignment_changed_by_another_writer_is_a_conflict(
    uow: sql.SqlManagerUnitOfWork,
) -> None:
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow)
    async with uow:
        assignment = await uow.assignments.get(ORDER_1)
        await uow.connection.execute(
            update(sql.assignments)
            .where(sql.assignments.c.order_id == ORDER_1)
            .values(version=sql.assignments.c.version + 1)
        )
        assignment.assign(kim, datetime.now(UTC))
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    assert (
        await handlers.get_assignment(handlers.GetAssignment(ORDER_1, MANAGER), uow)
    ).status is AssignmentStatus.AWAITING_TRAINER


async def test_opening_an_existing_assignment_twice_is_a_conflict(
    uow: sql.SqlManagerUnitOfWork,
) -> None:
    opened = await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow)
    async with uow:
        with pytest.raises(ConcurrencyConflict):
            await uow.assignments.add(opened)


async def test_redelivered_event_is_handled_once(
    uow: sql.SqlManagerUnitOfWork, engine: AsyncEngine
) -> None:
    causation = Causation("manager_svc", "ev-1")
    await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow.handling(causation))
    with pytest.raises(AlreadyHandled):
        await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow.handling(causation))
    assert await count(engine, sql.messaging.processed_events) == 1


async def test_cancellation_is_rolled_back_when_trainer_svc_is_unreachable(
    uow: sql.SqlManagerUnitOfWork, engine: AsyncEngine
) -> None:
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow)
    await handlers.assign_trainer(handlers.AssignTrainer(ORDER_1, kim.trainer_id, MANAGER), uow)
    command = handlers.OrderCancelled(ORDER_1, "moved away")
    with pytest.raises(ScheduleCancelUnavailable):
        await handlers.cancel_assignment_on_order_cancelled(
            command, uow.handling(Causation("manager_svc", "ev-9")), Unreachable()
        )
    assert (
        await handlers.get_assignment(handlers.GetAssignment(ORDER_1, MANAGER), uow)
    ).status is AssignmentStatus.TRAINER_ASSIGNED
    assert [e.event_type for e in await outbox(engine)] == ["TrainerAssigned"]
    assert await count(engine, sql.messaging.processed_events) == 0

    accepting = Accepting()
    await handlers.cancel_assignment_on_order_cancelled(
        command, uow.handling(Causation("manager_svc", "ev-9")), accepting
    )
    cancelled = await handlers.get_assignment(handlers.GetAssignment(ORDER_1, MANAGER), uow)
    assert (cancelled.status, cancelled.schedule_note) == (
        AssignmentStatus.CANCELLED,
        "schedule cancelled",
    )
    assert [e.event_type for e in await outbox(engine)] == [
        "TrainerAssigned",
        "AssignmentCancelled",
    ]
    assert accepting.calls == [ORDER_1]


async def test_tombstone_keeps_a_late_placement_cancelled(uow: sql.SqlManagerUnitOfWork) -> None:
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled(ORDER_1, "oops"), uow, Accepting()
    )
    await handlers.open_assignment_on_order_placed(placed(ORDER_1), uow, auto_assign=True)
    stored = await handlers.get_assignment(handlers.GetAssignment(ORDER_1, MANAGER), uow)
    assert (stored.status, stored.customer_id, stored.cancel_reason) == (
        AssignmentStatus.CANCELLED,
        "c-1",
        "oops",
    )


async def test_deactivated_trainer_is_stored_inactive(uow: sql.SqlManagerUnitOfWork) -> None:
    kim = await handlers.register_trainer(handlers.RegisterTrainer("Kim", MANAGER), uow)
    async with uow:
        (await uow.trainers.get(kim.trainer_id)).deactivate()
        await uow.commit()
    [stored] = (await handlers.list_trainers(handlers.ListTrainers(MANAGER), uow, TOKENS)).items
    assert stored.active is False
