"""trainer_svc's repository and unit of work against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.auth import Caller, Role
from ptkit.domain import ConcurrencyConflict
from ptkit.events import EnvelopeSerializer, from_timestamp
from ptkit.paging import PageTokens
from ptkit.sql import AlreadyHandled, Causation
from ptplatform.events.v1 import events_pb2
from tests.helpers import database, outbox_envelopes
from trainer_svc.adapters import sql
from trainer_svc.application import handlers
from trainer_svc.domain.model import (
    ClassResult,
    Schedule,
    ScheduleNotFound,
    ScheduleStatus,
    TimeSlot,
    TrainerDoubleBooked,
)

TEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)
MANAGER_SVC = Caller("manager_svc", Role.SERVICE)
KIM = Caller("kim", Role.TRAINER)

TOKENS = PageTokens.development()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with database(database_url, sql.metadata) as engine:
        yield engine


def unit_of_work(engine: AsyncEngine) -> sql.SqlTrainerUnitOfWork:
    return sql.SqlTrainerUnitOfWork(engine, sql.messaging, EnvelopeSerializer("trainer"))


async def outbox(engine: AsyncEngine) -> list[events_pb2.EventEnvelope]:
    return await outbox_envelopes(engine, sql.messaging)


async def read_schedule(engine: AsyncEngine, order_id: str) -> Schedule:
    return await handlers.get_schedule(
        handlers.GetSchedule(order_id, MANAGER), unit_of_work(engine)
    )


def new_order_id() -> str:
    return str(uuid.uuid4())


async def open_schedule(engine: AsyncEngine, trainer_id: str = "kim", version: int = 1) -> str:
    order_id = new_order_id()
    event = handlers.TrainerAssigned(order_id, trainer_id, "alice", "Pilates 1:1", version)
    await handlers.open_schedule_on_trainer_assigned(event, unit_of_work(engine))
    return order_id


async def confirmed(
    engine: AsyncEngine, start: datetime, minutes: int = 60, trainer_id: str = "kim"
) -> str:
    order_id = await open_schedule(engine, trainer_id)
    command = handlers.ConfirmSchedule(order_id, Caller(trainer_id, Role.TRAINER), start, minutes)
    await handlers.confirm_schedule(command, unit_of_work(engine))
    return order_id


async def test_a_confirmed_schedule_reads_back_with_its_outbox_event(engine: AsyncEngine) -> None:
    order_id = await confirmed(engine, TEN, 45)
    loaded = await handlers.get_schedule(
        handlers.GetSchedule(order_id, MANAGER), unit_of_work(engine)
    )
    assert loaded.status is ScheduleStatus.CONFIRMED
    assert loaded.slot == TimeSlot.of(TEN, 45)
    assert loaded.slot is not None and loaded.slot.start.tzinfo is not None
    assert (loaded.trainer_id, loaded.customer_id, loaded.class_name) == (
        "kim",
        "alice",
        "Pilates 1:1",
    )
    assert loaded.version == 2
    [envelope] = await outbox(engine)
    assert (envelope.event_type, envelope.order_id, envelope.aggregate_version) == (
        "ScheduleConfirmed",
        order_id,
        2,
    )
    assert envelope.schedule_confirmed.trainer_id == "kim"
    assert from_timestamp(envelope.schedule_confirmed.start_time) == TEN
    assert envelope.schedule_confirmed.duration_minutes == 45


async def test_unknown_schedule_is_not_found(engine: AsyncEngine) -> None:
    with pytest.raises(ScheduleNotFound):
        await handlers.get_schedule(
            handlers.GetSchedule(new_order_id(), MANAGER), unit_of_work(engine)
        )


async def stored(
    engine: AsyncEngine, start: datetime, status: ScheduleStatus, trainer_id: str = "kim"
) -> str:
    """A schedule written as is, without the overlap rule, to probe the query alone."""
    schedule = Schedule.request(
        order_id=new_order_id(),
        trainer_id=trainer_id,
        customer_id="alice",
        class_name="Pilates 1:1",
        assignment_version=1,
        now=TEN,
    )
    if status is not ScheduleStatus.REQUESTED:
        schedule.confirm(trainer_id, TimeSlot.of(start, 60), [], TEN)
    if status is ScheduleStatus.CLASS_COMPLETED:
        schedule.register_result(trainer_id, ClassResult("good"), TEN)
    if status is ScheduleStatus.CANCELLED:
        schedule.cancel("", TEN)
    uow = unit_of_work(engine)
    async with uow:
        await uow.schedules.add(schedule)
        await uow.commit()
    return schedule.order_id


async def test_overlap_query_finds_only_the_trainers_booked_overlapping_schedules(
    engine: AsyncEngine,
) -> None:
    confirmed_id = await stored(engine, TEN - timedelta(minutes=30), ScheduleStatus.CONFIRMED)
    held_id = await stored(engine, TEN + timedelta(minutes=30), ScheduleStatus.CLASS_COMPLETED)
    await stored(engine, TEN - timedelta(hours=1), ScheduleStatus.CONFIRMED)  # ends at the start
    await stored(engine, TEN + timedelta(hours=1), ScheduleStatus.CONFIRMED)  # starts at the end
    await stored(engine, TEN, ScheduleStatus.CONFIRMED, trainer_id="lee")
    await stored(engine, TEN, ScheduleStatus.CANCELLED)
    await stored(engine, TEN, ScheduleStatus.REQUESTED)

    uow = unit_of_work(engine)
    async with uow:
        found = await uow.schedules.booked_overlapping("kim", TimeSlot.of(TEN, 60), "")
        without_self = await uow.schedules.booked_overlapping("kim", TimeSlot.of(TEN, 60), held_id)
        free = await uow.schedules.booked_overlapping(
            "kim", TimeSlot.of(TEN + timedelta(hours=3), 60), ""
        )
    assert sorted(s.order_id for s in found) == sorted([confirmed_id, held_id])
    assert [s.order_id for s in without_self] == [confirmed_id]
    assert free == []


async def test_concurrent_overlapping_confirmations_of_one_trainer_are_serialized(
    engine: AsyncEngine,
) -> None:
    first, second = await open_schedule(engine), await open_schedule(engine)
    slot = TimeSlot.of(TEN, 60)
    uow = unit_of_work(engine)
    async with uow:
        schedule = await uow.schedules.get(first)
        booked = await uow.schedules.booked_overlapping("kim", slot, first)
        competing = asyncio.create_task(
            handlers.confirm_schedule(
                handlers.ConfirmSchedule(
                    second,
                    Caller("kim", Role.TRAINER),
                    TEN + timedelta(minutes=30),
                    60,
                ),
                unit_of_work(engine),
            )
        )
        done, _ = await asyncio.wait({competing}, timeout=0.5)
        assert not done, "the competing confirmation must wait for this transaction"
        schedule.confirm("kim", slot, booked, TEN)
        await uow.commit()
    with pytest.raises(TrainerDoubleBooked, match=first):
        await competing
    second_schedule = await handlers.get_schedule(
        handlers.GetSchedule(second, MANAGER), unit_of_work(engine)
    )
    assert second_schedule.status is ScheduleStatus.REQUESTED


async def test_concurrent_changes_to_one_schedule_conflict(engine: AsyncEngine) -> None:
    order_id = await open_schedule(engine)
    uow = unit_of_work(engine)
    async with uow:
        stale = await uow.schedules.get(order_id)
        await uow.connection.execute(
            update(sql.schedules)
            .where(sql.schedules.c.order_id == order_id)
            .values(version=sql.schedules.c.version + 1)
        )
        stale.cancel("late", TEN)
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    loaded = await handlers.get_schedule(
        handlers.GetSchedule(order_id, MANAGER), unit_of_work(engine)
    )
    assert loaded.status is ScheduleStatus.REQUESTED
    assert await outbox(engine) == []


async def test_a_schedule_created_concurrently_conflicts(engine: AsyncEngine) -> None:
    order_id = new_order_id()
    uow = unit_of_work(engine)
    with pytest.raises(ConcurrencyConflict, match=order_id):
        async with uow:
            await uow.schedules.add(
                Schedule.cancelled_before_assignment(order_id=order_id, reason="", now=TEN)
            )
            await uow.schedules.add(
                Schedule.cancelled_before_assignment(order_id=order_id, reason="", now=TEN)
            )


async def test_cancel_before_assignment_survives_the_late_trainer_assigned(
    engine: AsyncEngine,
) -> None:
    order_id = new_order_id()
    await handlers.cancel_schedule(
        handlers.CancelSchedule(order_id, "order cancelled", MANAGER_SVC), unit_of_work(engine)
    )
    late = handlers.TrainerAssigned(order_id, "kim", "alice", "Pilates 1:1", 2)
    handling = unit_of_work(engine).handling(Causation("trainer_svc", "evt-1"))
    await handlers.open_schedule_on_trainer_assigned(late, handling)
    with pytest.raises(AlreadyHandled):
        await handlers.open_schedule_on_trainer_assigned(
            late, unit_of_work(engine).handling(Causation("trainer_svc", "evt-1"))
        )
    loaded = await handlers.get_schedule(
        handlers.GetSchedule(order_id, MANAGER), unit_of_work(engine)
    )
    assert (loaded.status, loaded.trainer_id, loaded.cancel_reason) == (
        ScheduleStatus.CANCELLED,
        "",
        "order cancelled",
    )
    assert [e.event_type for e in await outbox(engine)] == ["ScheduleCancelled"]


async def test_a_reassignment_is_stored_and_a_stale_one_ignored(engine: AsyncEngine) -> None:
    order_id = await open_schedule(engine, "kim", version=2)
    for trainer_id, version in (("lee", 4), ("park", 3)):
        event = handlers.TrainerAssigned(order_id, trainer_id, "alice", "Pilates 1:1", version)
        await handlers.open_schedule_on_trainer_assigned(event, unit_of_work(engine))
    loaded = await handlers.get_schedule(
        handlers.GetSchedule(order_id, MANAGER), unit_of_work(engine)
    )
    assert (loaded.trainer_id, loaded.assignment_version) == ("lee", 4)


async def test_list_schedules_filters_newest_first(engine: AsyncEngine) -> None:
    older = await open_schedule(engine, "kim")
    newer = await confirmed(engine, TEN, trainer_id="kim")
    await open_schedule(engine, "lee")
    uow = unit_of_work(engine)
    kims = (
        await handlers.list_schedules(handlers.ListSchedules("kim", None, MANAGER), uow, TOKENS)
    ).items
    kims_confirmed = (
        await handlers.list_schedules(
            handlers.ListSchedules("kim", ScheduleStatus.CONFIRMED, MANAGER), uow, TOKENS
        )
    ).items
    everyone = (
        await handlers.list_schedules(handlers.ListSchedules("", None, MANAGER), uow, TOKENS)
    ).items
    assert [s.order_id for s in kims] == [newer, older]
    assert [s.order_id for s in kims_confirmed] == [newer]
    assert len(everyone) == 3
