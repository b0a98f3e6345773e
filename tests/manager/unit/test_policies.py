"""manager_svc's use cases and event policies, against in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from manager_svc.application import handlers
from manager_svc.application.ports import ScheduleCancelUnavailable
from manager_svc.domain.events import AssignmentCancelled, CancellationRefused, TrainerAssigned
from manager_svc.domain.model import AssignmentNotFound, AssignmentStatus
from manager_svc.domain.roster import Trainer, TrainerNotFound
from ptkit.auth import Caller, Role
from ptkit.domain import ConcurrencyConflict
from tests.manager.fakes import FakeManagerUnitOfWork as FakeUnitOfWork
from tests.manager.fakes import FakeScheduleCanceller, refused, unavailable

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
START = datetime(2025, 3, 10, 18, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)


def clock() -> datetime:
    return NOW


def placed(order_id: str = "o-1") -> handlers.OrderPlaced:
    return handlers.OrderPlaced(
        order_id=order_id, customer_id="c-1", class_name="Pilates", preferred_start=START
    )


async def register(uow: FakeUnitOfWork, name: str, trainer_id: str) -> Trainer:
    return await handlers.register_trainer(
        handlers.RegisterTrainer(name, MANAGER), uow, lambda: trainer_id, clock
    )


async def open_and_assign(uow: FakeUnitOfWork, order_id: str, trainer_id: str) -> None:
    await handlers.open_assignment_on_order_placed(placed(order_id), uow, now=clock)
    await handlers.assign_trainer(handlers.AssignTrainer(order_id, trainer_id, MANAGER), uow, clock)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


# -- OrderPlaced ----------------------------------------------------------------------------


async def test_order_placed_opens_an_assignment_awaiting_a_trainer(uow: FakeUnitOfWork) -> None:
    await handlers.open_assignment_on_order_placed(placed(), uow, now=clock)
    assignment = uow.assignment("o-1")
    assert (assignment.status, assignment.customer_id, assignment.preferred_start) == (
        AssignmentStatus.AWAITING_TRAINER,
        "c-1",
        START,
    )
    assert uow.published == []


async def test_order_placed_twice_keeps_one_assignment_unchanged(uow: FakeUnitOfWork) -> None:
    await register(uow, "Kim", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    await handlers.open_assignment_on_order_placed(placed(), uow, auto_assign=True, now=clock)
    assert uow.assignment("o-1").status is AssignmentStatus.TRAINER_ASSIGNED
    assert len(uow.published) == 1


async def test_order_placed_after_its_cancellation_stays_cancelled(uow: FakeUnitOfWork) -> None:
    await register(uow, "Kim", "t-1")
    canceller = FakeScheduleCanceller()
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-1", "oops"), uow, canceller, clock
    )
    await handlers.open_assignment_on_order_placed(placed(), uow, auto_assign=True, now=clock)
    assignment = uow.assignment("o-1")
    assert (assignment.status, assignment.customer_id, assignment.trainer_id) == (
        AssignmentStatus.CANCELLED,
        "c-1",
        "",
    )
    assert canceller.calls == []


async def test_auto_assign_gives_the_order_to_the_least_loaded_active_trainer(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await register(uow, "Baek", "t-2")
    await register(uow, "Aaron", "t-0")
    async with uow:
        (await uow.trainers.get("t-0")).deactivate()
        await uow.commit()
    await open_and_assign(uow, "o-0", "t-1")
    await handlers.open_assignment_on_order_placed(placed("o-1"), uow, auto_assign=True, now=clock)
    assignment = uow.assignment("o-1")
    assert (assignment.status, assignment.trainer_id) == (AssignmentStatus.TRAINER_ASSIGNED, "t-2")
    assert isinstance(uow.published[-1], TrainerAssigned)
    assert uow.published[-1].trainer_id == "t-2"


async def test_auto_assign_does_not_count_cancelled_assignments_as_load(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await register(uow, "Baek", "t-2")
    await open_and_assign(uow, "o-0", "t-1")
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-0", "x"), uow, FakeScheduleCanceller(), clock
    )
    await handlers.open_assignment_on_order_placed(placed("o-1"), uow, auto_assign=True, now=clock)
    assert uow.assignment("o-1").trainer_id == "t-1"


async def test_without_auto_assign_the_order_waits_for_a_manager(uow: FakeUnitOfWork) -> None:
    await register(uow, "Ahn", "t-1")
    await handlers.open_assignment_on_order_placed(placed(), uow, auto_assign=False, now=clock)
    assert uow.assignment("o-1").status is AssignmentStatus.AWAITING_TRAINER


async def test_auto_assign_without_active_trainers_leaves_the_order_waiting(
    uow: FakeUnitOfWork,
) -> None:
    await handlers.open_assignment_on_order_placed(placed(), uow, auto_assign=True, now=clock)
    assert uow.assignment("o-1").status is AssignmentStatus.AWAITING_TRAINER
    assert uow.published == []


# -- AssignTrainer --------------------------------------------------------------------------


async def test_assigning_to_an_unknown_order_is_not_found(uow: FakeUnitOfWork) -> None:
    await register(uow, "Ahn", "t-1")
    with pytest.raises(AssignmentNotFound, match="no assignment for order o-9"):
        await handlers.assign_trainer(handlers.AssignTrainer("o-9", "t-1", MANAGER), uow, clock)


async def test_assigning_an_unknown_trainer_is_not_found(uow: FakeUnitOfWork) -> None:
    await handlers.open_assignment_on_order_placed(placed(), uow, now=clock)
    with pytest.raises(TrainerNotFound, match="trainer t-9 not found"):
        await handlers.assign_trainer(handlers.AssignTrainer("o-1", "t-9", MANAGER), uow, clock)


# -- ScheduleConfirmed ----------------------------------------------------------------------


async def test_schedule_confirmed_confirms_the_assignment(uow: FakeUnitOfWork) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    await handlers.confirm_assignment_on_schedule_confirmed(
        handlers.ScheduleConfirmed("o-1", "t-1"), uow, clock
    )
    assert uow.assignment("o-1").status is AssignmentStatus.ORDER_CONFIRMED


async def test_schedule_confirmed_by_a_replaced_trainer_names_that_trainer(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await register(uow, "Baek", "t-2")
    await open_and_assign(uow, "o-1", "t-2")
    await handlers.confirm_assignment_on_schedule_confirmed(
        handlers.ScheduleConfirmed("o-1", "t-1"), uow, clock
    )
    assignment = uow.assignment("o-1")
    assert (assignment.trainer_id, assignment.trainer_name) == ("t-1", "Ahn")


# -- OrderCancelled -------------------------------------------------------------------------


async def test_order_cancelled_cancels_assignment_and_schedule_together(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    canceller = FakeScheduleCanceller()
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-1", "moved away"), uow, canceller, clock
    )
    assignment = uow.assignment("o-1")
    assert canceller.calls == [("o-1", "moved away")]
    assert (assignment.status, assignment.schedule_note) == (
        AssignmentStatus.CANCELLED,
        "schedule cancelled",
    )
    assert uow.published[-1] == AssignmentCancelled(
        order_id="o-1", trainer_id="t-1", reason="moved away"
    )


async def test_order_cancelled_commits_nothing_when_trainer_svc_is_unreachable(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    published, commits = len(uow.published), uow.commits
    with pytest.raises(ScheduleCancelUnavailable):
        await handlers.cancel_assignment_on_order_cancelled(
            handlers.OrderCancelled("o-1", "moved away"), uow, unavailable(), clock
        )
    assert uow.assignment("o-1").status is AssignmentStatus.TRAINER_ASSIGNED
    assert (len(uow.published), uow.commits) == (published, commits)


async def test_order_cancelled_while_a_manager_reassigns_is_sent_round_again(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await register(uow, "Baek", "t-2")
    await open_and_assign(uow, "o-1", "t-1")

    class ReassignDuringTheCall(FakeScheduleCanceller):
        async def cancel_schedule(self, order_id: str, reason: str) -> None:
            await super().cancel_schedule(order_id, reason)
            await handlers.assign_trainer(
                handlers.AssignTrainer(order_id, "t-2", MANAGER), uow, clock
            )

    with pytest.raises(ConcurrencyConflict):
        await handlers.cancel_assignment_on_order_cancelled(
            handlers.OrderCancelled("o-1", "moved away"), uow, ReassignDuringTheCall(), clock
        )
    assert uow.assignment("o-1").trainer_id == "t-2"
    assert uow.assignment("o-1").status is AssignmentStatus.TRAINER_ASSIGNED

    redelivered = FakeScheduleCanceller()
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-1", "moved away"), uow, redelivered, clock
    )
    assert redelivered.calls == [("o-1", "moved away")]
    assert uow.assignment("o-1").status is AssignmentStatus.CANCELLED


async def test_redelivered_cancellation_succeeds_once_trainer_svc_is_back(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    command = handlers.OrderCancelled("o-1", "moved away")
    with pytest.raises(ScheduleCancelUnavailable):
        await handlers.cancel_assignment_on_order_cancelled(command, uow, unavailable(), clock)
    await handlers.cancel_assignment_on_order_cancelled(
        command, uow, FakeScheduleCanceller(), clock
    )
    assert uow.assignment("o-1").status is AssignmentStatus.CANCELLED


async def test_a_cancellation_refused_because_the_class_was_held_keeps_the_assignment(
    uow: FakeUnitOfWork,
) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    await handlers.confirm_assignment_on_schedule_confirmed(
        handlers.ScheduleConfirmed("o-1", "t-1"), uow, clock
    )
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-1", "moved away"), uow, refused("class already held"), clock
    )
    assignment = uow.assignment("o-1")
    assert (
        assignment.status,
        assignment.cancellation_refused_reason,
        assignment.cancel_reason,
    ) == (
        AssignmentStatus.ORDER_CONFIRMED,
        "class already held",
        "",
    )
    assert assignment.schedule_note == "schedule not cancelled: class already held"
    assert uow.published[-1] == CancellationRefused(
        order_id="o-1", customer_id="c-1", reason="class already held"
    )
    assert not any(isinstance(event, AssignmentCancelled) for event in uow.published)


async def test_a_refused_cancellation_redelivered_is_announced_once(uow: FakeUnitOfWork) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    command = handlers.OrderCancelled("o-1", "moved away")
    await handlers.cancel_assignment_on_order_cancelled(
        command, uow, refused("class already held"), clock
    )
    again = refused("class already held")
    await handlers.cancel_assignment_on_order_cancelled(command, uow, again, clock)
    assert again.calls == [("o-1", "moved away")]
    assert [type(e) for e in uow.published].count(CancellationRefused) == 1
    assert uow.assignment("o-1").status is AssignmentStatus.TRAINER_ASSIGNED


async def test_order_cancelled_without_a_trainer_does_not_call_trainer_svc(
    uow: FakeUnitOfWork,
) -> None:
    await handlers.open_assignment_on_order_placed(placed(), uow, now=clock)
    canceller = unavailable()
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-1", "x"), uow, canceller, clock
    )
    assert canceller.calls == []
    assert uow.assignment("o-1").status is AssignmentStatus.CANCELLED


async def test_order_cancelled_for_an_unknown_order_leaves_a_tombstone(uow: FakeUnitOfWork) -> None:
    canceller = FakeScheduleCanceller()
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled("o-1", "x"), uow, canceller, clock
    )
    assert uow.assignment("o-1").status is AssignmentStatus.CANCELLED
    assert canceller.calls == []


async def test_order_cancelled_again_does_not_call_trainer_svc_again(uow: FakeUnitOfWork) -> None:
    await register(uow, "Ahn", "t-1")
    await open_and_assign(uow, "o-1", "t-1")
    command = handlers.OrderCancelled("o-1", "x")
    await handlers.cancel_assignment_on_order_cancelled(
        command, uow, FakeScheduleCanceller(), clock
    )
    published = len(uow.published)
    again = FakeScheduleCanceller()
    await handlers.cancel_assignment_on_order_cancelled(command, uow, again, clock)
    assert (again.calls, len(uow.published)) == ([], published)
