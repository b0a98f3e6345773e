"""The Schedule state machine: REQUESTED -> CONFIRMED -> CLASS_COMPLETED, or CANCELLED."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ptkit.domain import DomainError, InvalidValue
from trainer_svc.domain.events import ClassResultRegistered, ScheduleCancelled, ScheduleConfirmed
from trainer_svc.domain.model import (
    ClassAlreadyHeld,
    ClassResult,
    ClassResultAlreadyRegistered,
    Schedule,
    ScheduleAlreadyConfirmed,
    ScheduleNotConfirmed,
    ScheduleOfAnotherTrainer,
    ScheduleStatus,
    ScheduleWasCancelled,
    TimeSlot,
    TrainerDoubleBooked,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HOUR = TimeSlot.of(TEN, 60)


def requested(order_id: str = "o-1", trainer_id: str = "kim", version: int = 1) -> Schedule:
    return Schedule.request(
        order_id=order_id,
        trainer_id=trainer_id,
        customer_id="alice",
        class_name="Pilates 1:1",
        assignment_version=version,
        now=NOW,
    )


def in_state(status: ScheduleStatus, order_id: str = "o-1", slot: TimeSlot = HOUR) -> Schedule:
    schedule = requested(order_id)
    if status in (ScheduleStatus.CONFIRMED, ScheduleStatus.CLASS_COMPLETED):
        schedule.confirm("kim", slot, [], NOW)
    if status is ScheduleStatus.CLASS_COMPLETED:
        schedule.register_result("kim", ClassResult("great squats"), NOW)
    if status is ScheduleStatus.CANCELLED:
        schedule.cancel("customer is ill", NOW)
    schedule.events.clear()
    return schedule


# -- time slots ------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [1, 480])
def test_a_slot_lasts_one_to_480_minutes(minutes: int) -> None:
    assert TimeSlot.of(TEN, minutes).end == TEN + timedelta(minutes=minutes)


@pytest.mark.parametrize("minutes", [0, -30, 481])
def test_a_slot_outside_one_to_480_minutes_is_invalid(minutes: int) -> None:
    with pytest.raises(InvalidValue, match="duration_minutes must be between 1 and 480"):
        TimeSlot.of(TEN, minutes)


def test_a_slot_needs_a_start_time() -> None:
    with pytest.raises(InvalidValue, match="start_time is required"):
        TimeSlot.of(None, 60)


def test_a_slot_start_without_time_zone_is_invalid() -> None:
    with pytest.raises(InvalidValue, match="time zone"):
        TimeSlot.of(datetime(2026, 12, 1, 10, 0), 60)


def test_a_slot_that_would_end_after_the_last_representable_time_is_invalid() -> None:
    with pytest.raises(InvalidValue, match="too far in the future"):
        TimeSlot.of(datetime(9999, 12, 31, 23, 0, tzinfo=UTC), 120)


def test_a_slot_is_kept_in_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    assert TimeSlot.of(datetime(2026, 12, 1, 19, 0, tzinfo=seoul), 60) == HOUR


@pytest.mark.parametrize(
    ("start_minute", "minutes", "overlaps"),
    [
        (-60, 60, False),  # ends when the class starts
        (60, 30, False),  # starts when the class ends
        (-30, 60, True),
        (30, 60, True),
        (10, 10, True),  # inside
        (-10, 120, True),  # around
    ],
)
def test_slots_overlap_only_when_they_share_time(
    start_minute: int, minutes: int, overlaps: bool
) -> None:
    other = TimeSlot.of(TEN + timedelta(minutes=start_minute), minutes)
    assert HOUR.overlaps(other) is overlaps
    assert other.overlaps(HOUR) is overlaps


# -- requesting, re-assigning -----------------------------------------------------------


def test_a_trainer_assignment_opens_a_requested_schedule_without_publishing() -> None:
    schedule = requested()
    assert schedule.status is ScheduleStatus.REQUESTED
    assert schedule.trainer_id == "kim"
    assert schedule.version == 1
    assert schedule.events == []


def test_a_schedule_request_needs_a_trainer() -> None:
    with pytest.raises(InvalidValue, match="trainer_id"):
        requested(trainer_id="")


def test_a_newer_assignment_moves_a_requested_schedule_to_the_new_trainer() -> None:
    schedule = requested(version=2)
    later = NOW + timedelta(minutes=5)
    schedule.reassign(
        trainer_id="lee",
        customer_id="alice",
        class_name="Pilates 1:1",
        assignment_version=3,
        now=later,
    )
    assert (schedule.trainer_id, schedule.assignment_version, schedule.updated_at) == (
        "lee",
        3,
        later,
    )
    assert schedule.version == 2


@pytest.mark.parametrize("version", [1, 2])
def test_a_stale_or_repeated_assignment_changes_nothing(version: int) -> None:
    schedule = requested(version=2)
    if version == 2:
        schedule.reassign(
            trainer_id="kim", customer_id="alice", class_name="x", assignment_version=2, now=NOW
        )
    else:
        schedule.reassign(
            trainer_id="lee", customer_id="alice", class_name="x", assignment_version=1, now=NOW
        )
    assert (schedule.trainer_id, schedule.class_name, schedule.version) == ("kim", "Pilates 1:1", 1)


@pytest.mark.parametrize(
    "status", [ScheduleStatus.CONFIRMED, ScheduleStatus.CLASS_COMPLETED, ScheduleStatus.CANCELLED]
)
def test_an_assignment_does_not_move_a_schedule_past_requested(status: ScheduleStatus) -> None:
    schedule = in_state(status)
    version = schedule.version
    schedule.reassign(
        trainer_id="lee", customer_id="alice", class_name="x", assignment_version=9, now=NOW
    )
    assert (schedule.status, schedule.trainer_id, schedule.version) == (status, "kim", version)


def test_a_late_assignment_does_not_reopen_a_schedule_cancelled_before_it() -> None:
    schedule = Schedule.cancelled_before_assignment(order_id="o-1", reason="changed plans", now=NOW)
    schedule.reassign(
        trainer_id="kim", customer_id="alice", class_name="x", assignment_version=1, now=NOW
    )
    assert schedule.status is ScheduleStatus.CANCELLED
    assert schedule.trainer_id == ""


# -- confirming --------------------------------------------------------------------------


def test_the_trainer_confirms_a_requested_schedule() -> None:
    schedule = requested()
    schedule.confirm("kim", HOUR, [], NOW)
    assert schedule.status is ScheduleStatus.CONFIRMED
    assert schedule.slot == HOUR
    assert schedule.version == 2
    assert schedule.events == [
        ScheduleConfirmed(order_id="o-1", trainer_id="kim", start_time=TEN, duration_minutes=60)
    ]


def test_confirming_again_with_the_same_slot_changes_nothing() -> None:
    schedule = in_state(ScheduleStatus.CONFIRMED)
    schedule.confirm("kim", TimeSlot.of(TEN, 60), [in_state(ScheduleStatus.CONFIRMED, "o-2")], NOW)
    assert schedule.version == 2
    assert schedule.events == []


def test_another_trainer_may_not_confirm() -> None:
    with pytest.raises(ScheduleOfAnotherTrainer, match="held by trainer 'kim', not 'lee'"):
        requested().confirm("lee", HOUR, [], NOW)


def test_confirm_overlapping_schedule_is_refused_naming_the_clash() -> None:
    clash = in_state(ScheduleStatus.CONFIRMED, "o-2")
    schedule = requested()
    with pytest.raises(TrainerDoubleBooked) as refused:
        schedule.confirm("kim", TimeSlot.of(TEN + timedelta(minutes=30), 60), [clash], NOW)
    assert "o-2" in str(refused.value)
    assert "2026-12-01 10:00-11:00 UTC" in str(refused.value)
    assert schedule.status is ScheduleStatus.REQUESTED
    assert schedule.events == []


def test_a_held_class_blocks_its_time_slot_too() -> None:
    with pytest.raises(TrainerDoubleBooked):
        requested().confirm("kim", HOUR, [in_state(ScheduleStatus.CLASS_COMPLETED, "o-2")], NOW)


@pytest.mark.parametrize("status", [ScheduleStatus.REQUESTED, ScheduleStatus.CANCELLED])
def test_unbooked_schedules_do_not_block_a_slot(status: ScheduleStatus) -> None:
    schedule = requested()
    schedule.confirm("kim", HOUR, [in_state(status, "o-2")], NOW)
    assert schedule.status is ScheduleStatus.CONFIRMED


def test_back_to_back_classes_are_not_double_booked() -> None:
    schedule = requested()
    schedule.confirm(
        "kim",
        TimeSlot.of(TEN + timedelta(hours=1), 60),
        [in_state(ScheduleStatus.CONFIRMED, "o-2")],
        NOW,
    )
    assert schedule.status is ScheduleStatus.CONFIRMED


def test_another_trainers_class_at_the_same_time_is_no_clash() -> None:
    other = requested("o-2", trainer_id="lee")
    other.confirm("lee", HOUR, [], NOW)
    schedule = requested()
    schedule.confirm("kim", HOUR, [other], NOW)
    assert schedule.status is ScheduleStatus.CONFIRMED


# -- class results -----------------------------------------------------------------------


def test_the_trainer_registers_the_class_result_of_a_confirmed_schedule() -> None:
    schedule = in_state(ScheduleStatus.CONFIRMED)
    schedule.register_result("kim", ClassResult("  deadlift form improved  "), NOW)
    assert schedule.status is ScheduleStatus.CLASS_COMPLETED
    assert schedule.class_result == ClassResult("deadlift form improved")
    assert schedule.events == [
        ClassResultRegistered(
            order_id="o-1", trainer_id="kim", customer_id="alice", result="deadlift form improved"
        )
    ]


def test_registering_the_same_result_again_changes_nothing() -> None:
    schedule = in_state(ScheduleStatus.CLASS_COMPLETED)
    schedule.register_result("kim", ClassResult("great squats"), NOW)
    assert schedule.events == []


def test_a_different_result_for_a_held_class_is_refused() -> None:
    with pytest.raises(ClassResultAlreadyRegistered):
        in_state(ScheduleStatus.CLASS_COMPLETED).register_result(
            "kim", ClassResult("something else"), NOW
        )


@pytest.mark.parametrize("result", ["", "   ", "x" * 2001])
def test_a_class_result_is_one_to_2000_characters(result: str) -> None:
    schedule = in_state(ScheduleStatus.CONFIRMED)
    with pytest.raises(InvalidValue, match="result"):
        schedule.register_result("kim", ClassResult(result), NOW)
    assert schedule.status is ScheduleStatus.CONFIRMED


def test_a_2000_character_result_is_accepted() -> None:
    schedule = in_state(ScheduleStatus.CONFIRMED)
    schedule.register_result("kim", ClassResult("x" * 2000), NOW)
    assert schedule.status is ScheduleStatus.CLASS_COMPLETED


# -- cancelling --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [ScheduleStatus.REQUESTED, ScheduleStatus.CONFIRMED])
def test_a_schedule_is_cancelled_until_the_class_is_held(status: ScheduleStatus) -> None:
    schedule = in_state(status)
    schedule.cancel(" order cancelled ", NOW)
    assert schedule.status is ScheduleStatus.CANCELLED
    assert schedule.cancel_reason == "order cancelled"
    assert schedule.events == [
        ScheduleCancelled(order_id="o-1", trainer_id="kim", reason="order cancelled")
    ]


def test_cancelling_a_cancelled_schedule_changes_nothing() -> None:
    schedule = in_state(ScheduleStatus.CANCELLED)
    version = schedule.version
    schedule.cancel("again", NOW)
    assert (schedule.cancel_reason, schedule.version, schedule.events) == (
        "customer is ill",
        version,
        [],
    )


def test_cancel_after_class_held_is_refused() -> None:
    with pytest.raises(ClassAlreadyHeld, match="class already held"):
        in_state(ScheduleStatus.CLASS_COMPLETED).cancel("too late", NOW)


def test_a_too_long_cancel_reason_is_invalid_and_changes_nothing() -> None:
    schedule = requested()
    with pytest.raises(InvalidValue, match="reason"):
        schedule.cancel("x" * 501, NOW)
    assert schedule.status is ScheduleStatus.REQUESTED


def test_cancelling_before_the_assignment_records_a_cancelled_schedule_without_trainer() -> None:
    schedule = Schedule.cancelled_before_assignment(
        order_id="o-1", reason="order cancelled", now=NOW
    )
    assert (schedule.status, schedule.trainer_id, schedule.cancel_reason) == (
        ScheduleStatus.CANCELLED,
        "",
        "order cancelled",
    )
    assert schedule.events == [
        ScheduleCancelled(order_id="o-1", trainer_id="", reason="order cancelled")
    ]


# -- every illegal transition ------------------------------------------------------------

Action = Callable[[Schedule], None]
CONFIRM: Action = lambda s: s.confirm("kim", TimeSlot.of(TEN + timedelta(days=1), 60), [], NOW)  # noqa: E731
RESULT: Action = lambda s: s.register_result("kim", ClassResult("a new result"), NOW)  # noqa: E731
CANCEL: Action = lambda s: s.cancel("", NOW)  # noqa: E731


@pytest.mark.parametrize(
    ("status", "action", "error"),
    [
        (ScheduleStatus.REQUESTED, RESULT, ScheduleNotConfirmed),
        (ScheduleStatus.CONFIRMED, CONFIRM, ScheduleAlreadyConfirmed),
        (ScheduleStatus.CLASS_COMPLETED, CONFIRM, ClassAlreadyHeld),
        (ScheduleStatus.CLASS_COMPLETED, RESULT, ClassResultAlreadyRegistered),
        (ScheduleStatus.CLASS_COMPLETED, CANCEL, ClassAlreadyHeld),
        (ScheduleStatus.CANCELLED, CONFIRM, ScheduleWasCancelled),
        (ScheduleStatus.CANCELLED, RESULT, ScheduleNotConfirmed),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    status: ScheduleStatus, action: Action, error: type[DomainError]
) -> None:
    schedule = in_state(status)
    before = (schedule.status, schedule.slot, schedule.class_result, schedule.version)
    with pytest.raises(error):
        action(schedule)
    assert (schedule.status, schedule.slot, schedule.class_result, schedule.version) == before
    assert schedule.events == []
