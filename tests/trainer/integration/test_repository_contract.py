"""The schedule repository contract: the same tests against the in-memory fakes
(tests/trainer/fakes.py) and the SQL repositories on SQLite and PostgreSQL, so the
fake the unit tests use cannot drift from what users get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.domain import ConcurrencyConflict
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageRequest
from ptkit.sql import AlreadyHandled, Causation
from tests.repository_contract import Backend, open_backend
from tests.trainer.fakes import FakeTrainerUnitOfWork
from trainer_svc.adapters import sql
from trainer_svc.application.ports import SCHEDULE_PAGES
from trainer_svc.domain.model import Schedule, ScheduleNotFound, ScheduleStatus, TimeSlot

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
EVENT_ID = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"

ALL = PageRequest(SCHEDULE_PAGES, 100)


@pytest.fixture
async def backend(store_url: str) -> AsyncIterator[Backend]:
    def new_uow(engine: AsyncEngine) -> Any:
        return sql.SqlTrainerUnitOfWork(engine, sql.messaging, EnvelopeSerializer("trainer"))

    async with open_backend(
        store_url, FakeTrainerUnitOfWork, new_uow, sql.metadata, sql.messaging
    ) as opened:
        yield opened


def schedule(n: int, trainer_id: str = "kim", minute: int | None = None) -> Schedule:
    return Schedule.request(
        order_id=f"o-{n}",
        trainer_id=trainer_id,
        customer_id="alice",
        class_name="Pilates 1:1",
        assignment_version=1,
        now=NOW + timedelta(minutes=n if minute is None else minute),
    )


TEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(minutes: int, duration: int = 60) -> TimeSlot:
    return TimeSlot(TEN + timedelta(minutes=minutes), duration)


async def stored(backend: Backend, *schedules: Schedule) -> None:
    async with backend.uow() as uow:
        for each in schedules:
            await uow.schedules.add(each)
        await uow.commit()


async def confirmed(backend: Backend, order_id: str, slot: TimeSlot) -> None:
    async with backend.uow() as uow:
        mine = await uow.schedules.get(order_id)
        mine.confirm(mine.trainer_id, slot, [], NOW)
        await uow.commit()


async def test_an_added_schedule_reads_back_equal(backend: Backend) -> None:
    await stored(backend, schedule(1))
    await confirmed(backend, "o-1", at(0))
    async with backend.uow() as uow:
        loaded = await uow.schedules.get("o-1")
        assert await uow.schedules.find("o-1") == loaded
    assert (loaded.status, loaded.slot) == (ScheduleStatus.CONFIRMED, at(0))


async def test_an_unknown_schedule_is_not_found(backend: Backend) -> None:
    async with backend.uow() as uow:
        assert await uow.schedules.find("o-unknown") is None
        with pytest.raises(ScheduleNotFound):
            await uow.schedules.get("o-unknown")


async def test_a_second_schedule_for_the_order_is_a_conflict(backend: Backend) -> None:
    await stored(backend, schedule(1))
    with pytest.raises(ConcurrencyConflict):
        async with backend.uow() as uow:
            await uow.schedules.add(schedule(1, "lee"))
            await uow.commit()


async def test_list_is_newest_first_filtered_by_trainer_and_status(backend: Backend) -> None:
    await stored(backend, schedule(1), schedule(2, "lee"), schedule(3), schedule(4, minute=3))
    await confirmed(backend, "o-3", at(0))
    async with backend.uow() as uow:
        everyone = [s.order_id for s in await uow.schedules.list(None, None, ALL)]
        kims = [s.order_id for s in await uow.schedules.list("kim", None, ALL)]
        booked = [s.order_id for s in await uow.schedules.list(None, ScheduleStatus.CONFIRMED, ALL)]
        kims_requested = await uow.schedules.list("kim", ScheduleStatus.REQUESTED, ALL)
    assert everyone == ["o-4", "o-3", "o-2", "o-1"]  # same time: larger id first
    assert kims == ["o-4", "o-3", "o-1"]
    assert booked == ["o-3"]
    assert [s.order_id for s in kims_requested] == ["o-4", "o-1"]


async def test_booked_overlapping_finds_the_trainers_booked_overlaps_only(
    backend: Backend,
) -> None:
    await stored(
        backend, schedule(1), schedule(2), schedule(3), schedule(4, "lee"), schedule(5), schedule(6)
    )
    await confirmed(backend, "o-1", at(0))  # 10:00-11:00
    await confirmed(backend, "o-2", at(120))  # 12:00-13:00, touches 11:00-12:00 only
    await confirmed(backend, "o-4", at(60))  # another trainer
    await confirmed(backend, "o-6", at(-60))  # 9:00-10:00, touches
    async with backend.uow() as uow:
        (await uow.schedules.get("o-3")).cancel("x", NOW)  # cancelled: not booked
        await uow.commit()
    async with backend.uow() as uow:
        wanted = at(30, 90)  # 10:30-12:00
        found = await uow.schedules.booked_overlapping("kim", wanted, "o-5")
        touching = await uow.schedules.booked_overlapping("kim", at(60), "o-5")
        itself = await uow.schedules.booked_overlapping("kim", at(0), "o-1")
    assert [s.order_id for s in found] == ["o-1"]
    assert touching == []
    assert itself == []


async def test_leaving_without_commit_keeps_nothing(backend: Backend) -> None:
    await stored(backend, schedule(1))
    async with backend.uow() as uow:
        (await uow.schedules.get("o-1")).cancel("x", NOW)
        await uow.schedules.add(schedule(2))
    async with backend.uow() as uow:
        assert (await uow.schedules.get("o-1")).status is ScheduleStatus.REQUESTED
        assert await uow.schedules.find("o-2") is None
    assert await backend.outbox() == []


async def test_events_reach_the_outbox_with_their_versions_in_the_commit(
    backend: Backend,
) -> None:
    await stored(backend, schedule(1))
    await confirmed(backend, "o-1", at(0))
    assert await backend.outbox() == [("ScheduleConfirmed", 2, "")]


async def test_a_schedule_changed_by_another_writer_is_a_conflict(backend: Backend) -> None:
    await stored(backend, schedule(1))
    async with backend.uow() as uow:
        stale = await uow.schedules.get("o-1")
        await backend.another_writer_bumps(uow, "schedules", "o-1")
        stale.cancel("late", NOW)
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    assert await backend.outbox() == []


# SQLite's BEGIN IMMEDIATE runs one writing unit of work at a time: no overlap to test
@pytest.mark.parametrize("store_url", ["memory", "postgresql"], indirect=True)
async def test_two_units_of_work_changing_one_schedule_conflict(backend: Backend) -> None:
    await stored(backend, schedule(1))
    async with backend.uow() as slow:
        stale = await slow.schedules.get("o-1")
        async with backend.uow() as fast:
            (await fast.schedules.get("o-1")).cancel("first", NOW)
            await fast.commit()
        stale.cancel("second", NOW)
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()
    async with backend.uow() as uow:
        assert (await uow.schedules.get("o-1")).cancel_reason == "first"


async def test_an_event_is_handled_once_and_its_causation_reaches_the_outbox(
    backend: Backend,
) -> None:
    causation = Causation("trainer_svc", EVENT_ID)
    async with backend.uow(causation) as uow:
        cancelled = schedule(1)
        cancelled.cancel("before assignment", NOW)
        await uow.schedules.add(cancelled)
        await uow.commit()
    with pytest.raises(AlreadyHandled):
        async with backend.uow(causation):
            pass
    assert [(e[0], e[2]) for e in await backend.outbox()] == [("ScheduleCancelled", EVENT_ID)]
