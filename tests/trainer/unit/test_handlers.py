"""trainer_svc use cases and policies against an in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.paging import PageTokens
from tests.trainer.fakes import FakeTrainerUnitOfWork as FakeUnitOfWork
from trainer_svc.application import handlers
from trainer_svc.domain.model import ScheduleNotFound, ScheduleStatus, TrainerDoubleBooked

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

TOKENS = PageTokens.development()


MANAGER = Caller("m-1", Role.MANAGER)
MANAGER_SVC = Caller("manager_svc", Role.SERVICE)
"""manager_svc's CancelSchedule call on OrderCancelled, through the internal listener."""


def trainer(trainer_id: str) -> Caller:
    return Caller(trainer_id, Role.TRAINER)


def cancel(order_id: str, reason: str) -> handlers.CancelSchedule:
    return handlers.CancelSchedule(order_id, reason, MANAGER)


def assigned(
    order_id: str = "o-1", trainer_id: str = "kim", version: int = 1
) -> handlers.TrainerAssigned:
    return handlers.TrainerAssigned(order_id, trainer_id, "alice", "Pilates 1:1", version)


def confirm(
    order_id: str = "o-1", trainer_id: str = "kim", start: datetime = TEN
) -> handlers.ConfirmSchedule:
    return handlers.ConfirmSchedule(order_id, trainer(trainer_id), start, 60)


async def opened(*orders: tuple[str, str]) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for order_id, trainer_id in orders:
        await handlers.open_schedule_on_trainer_assigned(
            assigned(order_id, trainer_id), uow, now=lambda: NOW
        )
    return uow


def event_names(uow: FakeUnitOfWork) -> list[str]:
    return [type(e).__name__ for e in uow.published]


async def test_cancel_schedule_twice_publishes_once() -> None:
    uow = await opened(("o-1", "kim"))
    first = await handlers.cancel_schedule(
        handlers.CancelSchedule("o-1", "order cancelled", MANAGER), uow
    )
    again = await handlers.cancel_schedule(
        handlers.CancelSchedule("o-1", "other reason", MANAGER), uow
    )
    assert again == first
    assert again.cancel_reason == "order cancelled"
    assert event_names(uow) == ["ScheduleCancelled"]


async def test_manager_svc_cancels_an_open_schedule_as_a_manager_would() -> None:
    uow = await opened(("o-1", "kim"))
    cancelled = await handlers.cancel_schedule(
        handlers.CancelSchedule("o-1", "order cancelled", MANAGER_SVC), uow
    )
    assert (cancelled.status, cancelled.trainer_id) == (ScheduleStatus.CANCELLED, "kim")
    assert event_names(uow) == ["ScheduleCancelled"]


async def test_a_manager_cancelling_an_unknown_order_is_not_found_and_writes_nothing() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(ScheduleNotFound, match="o-1"):
        await handlers.cancel_schedule(handlers.CancelSchedule("o-1", "oops", MANAGER), uow)
    assert uow.schedules.rows == {}
    assert (uow.commits, uow.published) == (0, [])


async def test_confirm_then_register_result_publishes_both_events() -> None:
    uow = await opened(("o-1", "kim"))
    await handlers.confirm_schedule(confirm(), uow)
    done = await handlers.register_class_result(
        handlers.RegisterClassResult("o-1", trainer("kim"), "well done"), uow
    )
    assert done.status is ScheduleStatus.CLASS_COMPLETED
    assert event_names(uow) == ["ScheduleConfirmed", "ClassResultRegistered"]


async def test_confirm_overlapping_schedule_is_refused() -> None:
    uow = await opened(("o-1", "kim"), ("o-2", "kim"))
    await handlers.confirm_schedule(confirm("o-1"), uow)
    with pytest.raises(TrainerDoubleBooked, match="o-1"):
        await handlers.confirm_schedule(confirm("o-2", start=TEN + timedelta(minutes=59)), uow)
    assert uow.schedules.rows["o-2"].status is ScheduleStatus.REQUESTED
    assert event_names(uow) == ["ScheduleConfirmed"]


async def test_two_trainers_may_teach_at_the_same_time() -> None:
    uow = await opened(("o-1", "kim"), ("o-2", "lee"))
    await handlers.confirm_schedule(confirm("o-1", "kim"), uow)
    await handlers.confirm_schedule(confirm("o-2", "lee"), uow)
    assert event_names(uow) == ["ScheduleConfirmed", "ScheduleConfirmed"]


async def test_a_trainer_cannot_confirm_a_schedule_moved_to_another_trainer() -> None:
    uow = await opened(("o-1", "kim"))
    await handlers.open_schedule_on_trainer_assigned(assigned(trainer_id="lee", version=2), uow)
    with pytest.raises(PermissionDenied, match="trainer 'kim' may not act for trainer 'lee'"):
        await handlers.confirm_schedule(confirm(trainer_id="kim"), uow)


async def test_confirm_unknown_schedule_is_not_found() -> None:
    with pytest.raises(ScheduleNotFound):
        await handlers.confirm_schedule(confirm(), FakeUnitOfWork())


async def test_list_schedules_filters_by_trainer_and_status() -> None:
    uow = await opened(("o-1", "kim"), ("o-2", "kim"), ("o-3", "lee"))
    await handlers.confirm_schedule(confirm("o-2"), uow)
    kims = (
        await handlers.list_schedules(handlers.ListSchedules("kim", None, MANAGER), uow, TOKENS)
    ).items
    confirmed = (
        await handlers.list_schedules(
            handlers.ListSchedules("", ScheduleStatus.CONFIRMED, MANAGER), uow, TOKENS
        )
    ).items
    everything = (
        await handlers.list_schedules(handlers.ListSchedules("", None, MANAGER), uow, TOKENS)
    ).items
    assert sorted(s.order_id for s in kims) == ["o-1", "o-2"]
    assert [s.order_id for s in confirmed] == ["o-2"]
    assert len(everything) == 3
