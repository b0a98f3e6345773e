"""trainer_svc's reaction to manager_svc's TrainerAssigned, against the in-memory unit
of work: the schedule confirmation request."""

from __future__ import annotations

from tests.trainer.fakes import FakeTrainerUnitOfWork as FakeUnitOfWork
from tests.trainer.unit.test_handlers import MANAGER_SVC, assigned, event_names, opened
from trainer_svc.application import handlers
from trainer_svc.domain.model import ScheduleStatus


async def test_trainer_assigned_opens_a_requested_schedule() -> None:
    uow = await opened(("o-1", "kim"))
    schedule = uow.schedules.rows["o-1"]
    assert (schedule.status, schedule.trainer_id, schedule.customer_id) == (
        ScheduleStatus.REQUESTED,
        "kim",
        "alice",
    )
    assert uow.commits == 1
    assert uow.published == []


async def test_a_reassignment_moves_the_requested_schedule_and_a_stale_one_is_ignored() -> None:
    uow = FakeUnitOfWork()
    await handlers.open_schedule_on_trainer_assigned(assigned(trainer_id="kim", version=1), uow)
    await handlers.open_schedule_on_trainer_assigned(assigned(trainer_id="lee", version=3), uow)
    await handlers.open_schedule_on_trainer_assigned(assigned(trainer_id="park", version=2), uow)
    assert uow.schedules.rows["o-1"].trainer_id == "lee"
    assert uow.commits == 3


async def test_cancel_before_trainer_assigned_keeps_the_schedule_cancelled() -> None:
    uow = FakeUnitOfWork()
    cancelled = await handlers.cancel_schedule(
        handlers.CancelSchedule("o-1", "order cancelled", MANAGER_SVC), uow
    )
    await handlers.open_schedule_on_trainer_assigned(assigned(), uow)
    assert cancelled.status is ScheduleStatus.CANCELLED
    assert uow.schedules.rows["o-1"].status is ScheduleStatus.CANCELLED
    assert event_names(uow) == ["ScheduleCancelled"]
