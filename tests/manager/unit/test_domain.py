"""The Assignment state machine and the trainer roster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from manager_svc.domain.events import AssignmentCancelled, CancellationRefused, TrainerAssigned
from manager_svc.domain.model import (
    Assignment,
    AssignmentClosed,
    AssignmentStatus,
    OrderAlreadyConfirmed,
)
from manager_svc.domain.roster import Trainer, TrainerInactive, least_loaded
from ptkit.domain import IllegalTransition, InvalidValue

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
START = datetime(2025, 3, 10, 18, 0, tzinfo=UTC)


def trainer(name: str = "Kim", trainer_id: str = "t-1", active: bool = True) -> Trainer:
    registered = Trainer.register(trainer_id=trainer_id, name=name, now=NOW)
    if not active:
        registered.deactivate()
    return registered


def open_assignment(order_id: str = "o-1") -> Assignment:
    return Assignment.open(
        order_id=order_id, customer_id="c-1", class_name="Pilates", preferred_start=START, now=NOW
    )


def assigned(to: Trainer | None = None) -> Assignment:
    assignment = open_assignment()
    assignment.assign(to or trainer(), NOW)
    assignment.events.clear()
    return assignment


def confirmed() -> Assignment:
    assignment = assigned()
    assignment.confirm("t-1", "Kim", NOW)
    return assignment


def cancelled() -> Assignment:
    assignment = open_assignment()
    assignment.cancel("changed my mind", NOW)
    assignment.events.clear()
    return assignment


# -- roster -------------------------------------------------------------------------------


def test_registered_trainer_is_active_with_trimmed_name() -> None:
    registered = Trainer.register(trainer_id="t-1", name="  Kim Jiho  ", now=NOW)
    assert (registered.name, registered.active) == ("Kim Jiho", True)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_trainer_name_must_be_1_to_100_characters(name: str) -> None:
    with pytest.raises(InvalidValue, match="name"):
        Trainer.register(trainer_id="t-1", name=name, now=NOW)


def test_trainer_name_of_100_characters_is_accepted() -> None:
    assert len(Trainer.register(trainer_id="t-1", name="x" * 100, now=NOW).name) == 100


def test_least_loaded_picks_the_active_trainer_with_fewest_assignments() -> None:
    busy, free = trainer("Ahn", "t-1"), trainer("Baek", "t-2")
    assert least_loaded([busy, free], {"t-1": 2, "t-2": 1}) is free


def test_least_loaded_counts_trainers_without_assignments_as_free() -> None:
    busy, new = trainer("Ahn", "t-1"), trainer("Baek", "t-2")
    assert least_loaded([busy, new], {"t-1": 1}) is new


def test_least_loaded_skips_inactive_trainers() -> None:
    idle_but_gone, busy = trainer("Ahn", "t-1", active=False), trainer("Baek", "t-2")
    assert least_loaded([idle_but_gone, busy], {"t-2": 5}) is busy


def test_least_loaded_tie_goes_to_the_name_then_the_id() -> None:
    first_by_id = trainer("Choi", "t-1")
    second_by_id = trainer("Choi", "t-2")
    later_name = trainer("Han", "t-0")
    assert least_loaded([later_name, second_by_id, first_by_id], {}) is first_by_id


def test_least_loaded_without_active_trainers_picks_nobody() -> None:
    assert least_loaded([trainer(active=False)], {}) is None
    assert least_loaded([], {}) is None


# -- opening ------------------------------------------------------------------------------


def test_placed_order_awaits_a_trainer_without_publishing() -> None:
    assignment = open_assignment()
    assert assignment.status is AssignmentStatus.AWAITING_TRAINER
    assert (assignment.trainer_id, assignment.events) == ("", [])


# -- assigning ----------------------------------------------------------------------------


def test_assigning_a_trainer_publishes_trainer_assigned() -> None:
    assignment = open_assignment()
    assignment.assign(trainer(), LATER)
    assert assignment.status is AssignmentStatus.TRAINER_ASSIGNED
    assert (assignment.trainer_id, assignment.trainer_name, assignment.updated_at) == (
        "t-1",
        "Kim",
        LATER,
    )
    assert assignment.events == [
        TrainerAssigned(
            order_id="o-1",
            trainer_id="t-1",
            trainer_name="Kim",
            customer_id="c-1",
            class_name="Pilates",
            preferred_start=START,
        )
    ]


def test_another_trainer_may_take_over_before_confirmation() -> None:
    assignment = assigned()
    assignment.assign(trainer("Lee", "t-2"), LATER)
    assert (assignment.trainer_id, assignment.trainer_name) == ("t-2", "Lee")
    assert [type(e) for e in assignment.events] == [TrainerAssigned]


def test_assigning_the_same_trainer_again_changes_nothing() -> None:
    assignment = assigned()
    version = assignment.version
    assignment.assign(trainer(), LATER)
    assert (assignment.version, assignment.events) == (version, [])


def test_assigning_an_inactive_trainer_is_refused() -> None:
    assignment = open_assignment()
    with pytest.raises(TrainerInactive, match="t-1 is not active"):
        assignment.assign(trainer(active=False), NOW)
    assert assignment.status is AssignmentStatus.AWAITING_TRAINER


def test_assigning_a_cancelled_order_is_refused() -> None:
    with pytest.raises(AssignmentClosed, match="o-1 is cancelled"):
        cancelled().assign(trainer(), NOW)


def test_assigning_after_the_order_was_confirmed_is_refused() -> None:
    assignment = confirmed()
    with pytest.raises(OrderAlreadyConfirmed, match="already confirmed"):
        assignment.assign(trainer("Lee", "t-2"), NOW)
    assert assignment.trainer_id == "t-1"


@pytest.mark.parametrize("state", [cancelled, confirmed])
def test_refused_assignments_are_illegal_transitions(state: Callable[[], Assignment]) -> None:
    with pytest.raises(IllegalTransition):
        state().assign(trainer(), NOW)


# -- confirming ---------------------------------------------------------------------------


def test_confirmed_schedule_confirms_the_assignment() -> None:
    assignment = assigned()
    assignment.confirm("t-1", "Kim", LATER)
    assert assignment.status is AssignmentStatus.ORDER_CONFIRMED
    assert (assignment.trainer_id, assignment.updated_at, assignment.events) == ("t-1", LATER, [])


def test_confirmation_by_another_trainer_records_who_holds_the_class() -> None:
    assignment = assigned()
    assignment.confirm("t-2", "Lee", LATER)
    assert (assignment.status, assignment.trainer_id, assignment.trainer_name) == (
        AssignmentStatus.ORDER_CONFIRMED,
        "t-2",
        "Lee",
    )


def test_late_confirmation_leaves_a_cancelled_assignment_cancelled() -> None:
    assignment = cancelled()
    assignment.confirm("t-1", "Kim", LATER)
    assert assignment.status is AssignmentStatus.CANCELLED


def test_duplicate_confirmation_changes_nothing() -> None:
    assignment = confirmed()
    version = assignment.version
    assignment.confirm("t-2", "Lee", LATER)
    assert (assignment.version, assignment.trainer_id) == (version, "t-1")


# -- cancelling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "trainer_id"), [(open_assignment, ""), (assigned, "t-1"), (confirmed, "t-1")]
)
def test_cancelling_in_any_open_state_publishes_assignment_cancelled(
    state: Callable[[], Assignment], trainer_id: str
) -> None:
    assignment = state()
    assignment.events.clear()
    assignment.cancel("  moved away  ", LATER, schedule_note="schedule cancelled")
    assert assignment.status is AssignmentStatus.CANCELLED
    assert (assignment.cancel_reason, assignment.schedule_note) == (
        "moved away",
        "schedule cancelled",
    )
    assert assignment.events == [
        AssignmentCancelled(order_id="o-1", trainer_id=trainer_id, reason="moved away")
    ]


def test_cancelling_twice_changes_nothing() -> None:
    assignment = cancelled()
    version = assignment.version
    assignment.cancel("again", LATER, schedule_note="other")
    assert (assignment.version, assignment.cancel_reason, assignment.events) == (
        version,
        "changed my mind",
        [],
    )


def test_overlong_reason_from_an_event_is_cut_not_refused() -> None:
    assignment = open_assignment()
    assignment.cancel("x" * 2000, NOW)
    assert len(assignment.cancel_reason) == 500


def test_only_an_assignment_with_a_trainer_holds_a_schedule() -> None:
    assert not open_assignment().holds_schedule
    assert assigned().holds_schedule
    assert confirmed().holds_schedule
    assert not cancelled().holds_schedule


# -- refused cancellation (ADR 0007) ------------------------------------------------------


@pytest.mark.parametrize("state", [assigned, confirmed])
def test_a_refused_cancellation_keeps_the_status_and_is_announced(
    state: Callable[[], Assignment],
) -> None:
    assignment = state()
    status = assignment.status
    assignment.events.clear()
    assignment.refuse_cancellation("class already held", LATER)
    assert (assignment.status, assignment.cancellation_refused_reason) == (
        status,
        "class already held",
    )
    assert assignment.schedule_note == "schedule not cancelled: class already held"
    assert assignment.holds_schedule
    assert assignment.events == [
        CancellationRefused(order_id="o-1", customer_id="c-1", reason="class already held")
    ]


def test_a_cancellation_refused_twice_is_announced_once() -> None:
    assignment = confirmed()
    assignment.refuse_cancellation("class already held", LATER)
    version = assignment.version
    assignment.events.clear()
    assignment.refuse_cancellation("again", LATER)
    assert (assignment.version, assignment.cancellation_refused_reason, assignment.events) == (
        version,
        "class already held",
        [],
    )


def test_a_cancelled_assignment_records_no_refusal() -> None:
    assignment = cancelled()
    assignment.refuse_cancellation("class already held", LATER)
    assert (assignment.status, assignment.cancellation_refused_reason, assignment.events) == (
        AssignmentStatus.CANCELLED,
        "",
        [],
    )


# -- cancelled before placed --------------------------------------------------------------


def test_cancellation_before_placement_leaves_a_cancelled_tombstone() -> None:
    tombstone = Assignment.cancelled_before_placed(order_id="o-1", reason="oops", now=NOW)
    assert tombstone.status is AssignmentStatus.CANCELLED
    assert tombstone.events == [AssignmentCancelled(order_id="o-1", trainer_id="", reason="oops")]


def test_late_placement_fills_in_the_tombstone_but_keeps_it_cancelled() -> None:
    tombstone = Assignment.cancelled_before_placed(order_id="o-1", reason="oops", now=NOW)
    tombstone.events.clear()
    tombstone.record_placement(
        customer_id="c-1", class_name="Pilates", preferred_start=START, now=LATER
    )
    assert tombstone.status is AssignmentStatus.CANCELLED
    assert (tombstone.customer_id, tombstone.class_name, tombstone.preferred_start) == (
        "c-1",
        "Pilates",
        START,
    )
    assert tombstone.events == []
    with pytest.raises(AssignmentClosed):
        tombstone.assign(trainer(), LATER)


def test_repeated_placement_changes_nothing() -> None:
    assignment = open_assignment()
    version = assignment.version
    assignment.record_placement(
        customer_id="c-2", class_name="Yoga", preferred_start=None, now=LATER
    )
    assert (assignment.version, assignment.customer_id) == (version, "c-1")
