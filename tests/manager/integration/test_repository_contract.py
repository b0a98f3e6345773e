"""The trainer and assignment repository contract: the same tests against the in-memory fakes
(tests/manager/fakes.py) and the SQL repositories on SQLite and PostgreSQL, so the
fake the unit tests use cannot drift from what users get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from manager_svc.adapters import sql
from manager_svc.application.ports import ASSIGNMENT_PAGES
from manager_svc.domain.model import Assignment, AssignmentNotFound, AssignmentStatus
from manager_svc.domain.roster import Trainer, TrainerNotFound
from ptkit.domain import ConcurrencyConflict
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageRequest
from ptkit.sql import AlreadyHandled, Causation
from tests.manager.fakes import FakeManagerUnitOfWork
from tests.repository_contract import Backend, open_backend

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
EVENT_ID = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"

ALL = PageRequest(ASSIGNMENT_PAGES, 100)


@pytest.fixture
async def backend(store_url: str) -> AsyncIterator[Backend]:
    def new_uow(engine: AsyncEngine) -> Any:
        return sql.SqlManagerUnitOfWork(engine, sql.messaging, EnvelopeSerializer("manager"))

    async with open_backend(
        store_url, FakeManagerUnitOfWork, new_uow, sql.metadata, sql.messaging
    ) as opened:
        yield opened


def assignment(n: int, minute: int | None = None) -> Assignment:
    return Assignment.open(
        order_id=f"o-{n}",
        customer_id="alice",
        class_name="Pilates 1:1",
        preferred_start=None,
        now=NOW + timedelta(minutes=n if minute is None else minute),
    )


def trainer(trainer_id: str, name: str) -> Trainer:
    return Trainer.register(trainer_id=trainer_id, name=name, now=NOW)


async def stored(backend: Backend, *items: Trainer | Assignment) -> None:
    async with backend.uow() as uow:
        for item in items:
            repository = uow.trainers if isinstance(item, Trainer) else uow.assignments
            await repository.add(item)
        await uow.commit()


async def assign(backend: Backend, order_id: str, trainer_id: str) -> None:
    async with backend.uow() as uow:
        (await uow.assignments.get(order_id)).assign(await uow.trainers.get(trainer_id), NOW)
        await uow.commit()


async def test_trainers_read_back_and_list_by_name(backend: Backend) -> None:
    await stored(backend, trainer("t-2", "Lee"), trainer("t-1", "Kim"), trainer("t-3", "Kim"))
    async with backend.uow() as uow:
        assert await uow.trainers.find("t-2") == await uow.trainers.get("t-2")
        assert [t.trainer_id for t in await uow.trainers.list()] == ["t-1", "t-3", "t-2"]


async def test_unknown_trainer_and_assignment_are_not_found(backend: Backend) -> None:
    async with backend.uow() as uow:
        assert await uow.trainers.find("t-x") is None
        assert await uow.assignments.find("o-x") is None
        with pytest.raises(TrainerNotFound):
            await uow.trainers.get("t-x")
        with pytest.raises(AssignmentNotFound):
            await uow.assignments.get("o-x")


async def test_a_second_assignment_or_trainer_with_the_same_id_is_a_conflict(
    backend: Backend,
) -> None:
    await stored(backend, trainer("t-1", "Kim"), assignment(1))
    with pytest.raises(ConcurrencyConflict):
        await stored(backend, assignment(1))
    with pytest.raises(ConcurrencyConflict):
        await stored(backend, trainer("t-1", "Lee"))


async def test_assignments_list_newest_first_by_status_and_trainer(backend: Backend) -> None:
    await stored(
        backend, trainer("t-1", "Kim"), trainer("t-2", "Lee"), *(assignment(n) for n in range(1, 5))
    )
    await assign(backend, "o-1", "t-1")
    await assign(backend, "o-3", "t-1")
    await assign(backend, "o-2", "t-2")
    async with backend.uow() as uow:
        everything = [a.order_id for a in await uow.assignments.list(None, None, ALL)]
        waiting = await uow.assignments.list(AssignmentStatus.AWAITING_TRAINER, None, ALL)
        kims = await uow.assignments.list(AssignmentStatus.TRAINER_ASSIGNED, "t-1", ALL)
        kims_any = await uow.assignments.list(None, "t-1", ALL)
    assert everything == ["o-4", "o-3", "o-2", "o-1"]
    assert [a.order_id for a in waiting] == ["o-4"]
    assert [a.order_id for a in kims] == ["o-3", "o-1"]
    assert [a.order_id for a in kims_any] == ["o-3", "o-1"]


async def test_load_per_trainer_counts_held_assignments(backend: Backend) -> None:
    await stored(
        backend, trainer("t-1", "Kim"), trainer("t-2", "Lee"), *(assignment(n) for n in range(1, 5))
    )
    for order_id, trainer_id in (("o-1", "t-1"), ("o-2", "t-1"), ("o-3", "t-2"), ("o-4", "t-2")):
        await assign(backend, order_id, trainer_id)
    async with backend.uow() as uow:
        (await uow.assignments.get("o-4")).cancel("ill", NOW)
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.assignments.load_per_trainer() == {"t-1": 2, "t-2": 1}


async def test_leaving_without_commit_keeps_nothing(backend: Backend) -> None:
    await stored(backend, trainer("t-1", "Kim"), assignment(1))
    async with backend.uow() as uow:
        (await uow.assignments.get("o-1")).assign(await uow.trainers.get("t-1"), NOW)
        await uow.trainers.add(trainer("t-2", "Lee"))
    async with backend.uow() as uow:
        assert (await uow.assignments.get("o-1")).status is AssignmentStatus.AWAITING_TRAINER
        assert await uow.trainers.find("t-2") is None
    assert await backend.outbox() == []


async def test_events_reach_the_outbox_with_their_versions_in_the_commit(
    backend: Backend,
) -> None:
    await stored(backend, trainer("t-1", "Kim"), assignment(1))
    await assign(backend, "o-1", "t-1")
    assert await backend.outbox() == [("TrainerAssigned", 2, "")]


async def test_an_assignment_changed_by_another_writer_is_a_conflict(backend: Backend) -> None:
    await stored(backend, trainer("t-1", "Kim"), assignment(1))
    async with backend.uow() as uow:
        stale = await uow.assignments.get("o-1")
        await backend.another_writer_bumps(uow, "assignments", "o-1")
        stale.assign(await uow.trainers.get("t-1"), NOW)
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    assert await backend.outbox() == []


# SQLite's BEGIN IMMEDIATE runs one writing unit of work at a time: no overlap to test
@pytest.mark.parametrize("store_url", ["memory", "postgresql"], indirect=True)
async def test_two_units_of_work_changing_one_trainer_conflict(backend: Backend) -> None:
    await stored(backend, trainer("t-1", "Kim"))
    async with backend.uow() as slow:
        stale = await slow.trainers.get("t-1")
        async with backend.uow() as fast:
            (await fast.trainers.get("t-1")).deactivate()
            await fast.commit()
        stale.deactivate()
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()


async def test_an_event_is_handled_once_and_its_causation_reaches_the_outbox(
    backend: Backend,
) -> None:
    await stored(backend, trainer("t-1", "Kim"), assignment(1))
    causation = Causation("manager_svc", EVENT_ID)
    async with backend.uow(causation) as uow:
        (await uow.assignments.get("o-1")).assign(await uow.trainers.get("t-1"), NOW)
        await uow.commit()
    with pytest.raises(AlreadyHandled):
        async with backend.uow(causation):
            pass
    assert await backend.outbox() == [("TrainerAssigned", 2, EVENT_ID)]
