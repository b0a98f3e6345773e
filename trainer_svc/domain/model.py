"""Schedule: REQUESTED -> CONFIRMED -> CLASS_COMPLETED, or CANCELLED (never after the class).

A trainer never holds two booked (confirmed or held) schedules whose time slots overlap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ptkit.domain import Aggregate, IllegalTransition, InvalidValue, NotFound
from ptkit.statuses import ScheduleStatus
from ptkit.validation import require_text

from .events import ClassResultRegistered, ScheduleCancelled, ScheduleConfirmed

MAX_DURATION_MINUTES = 480
MAX_RESULT_LENGTH = 2000
MAX_REASON_LENGTH = 500


_LATEST_START = datetime.max.replace(tzinfo=UTC) - timedelta(minutes=MAX_DURATION_MINUTES)


def cancel_reason(text: str) -> str:
    """Why a schedule is cancelled: optional free text, refused when too long."""
    return require_text(
        "reason", text, max_length=MAX_REASON_LENGTH, required=False, multiline=True
    )


BOOKED = tuple(status for status in ScheduleStatus if status.booked)
"""Statuses whose time slot the trainer is committed to."""


@dataclass(frozen=True)
class TimeSlot:
    """When a class takes place: [start, start + duration)."""

    start: datetime
    duration_minutes: int

    @classmethod
    def of(cls, start: datetime | None, duration_minutes: int) -> TimeSlot:
        if start is None:
            raise InvalidValue("start_time is required", reason="REQUIRED", field="start_time")
        if start.tzinfo is None:
            raise InvalidValue("start_time must carry a time zone", field="start_time")
        if not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
            raise InvalidValue(
                f"duration_minutes must be between 1 and {MAX_DURATION_MINUTES}, "
                f"got {duration_minutes}",
                reason="OUT_OF_RANGE",
                field="duration_minutes",
                metadata={"min": "1", "max": str(MAX_DURATION_MINUTES)},
            )
        if start > _LATEST_START:
            raise InvalidValue(
                f"start_time {start.isoformat()} is too far in the future",
                reason="OUT_OF_RANGE",
                field="start_time",
            )
        return cls(start.astimezone(UTC), duration_minutes)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)

    def overlaps(self, other: TimeSlot) -> bool:
        """Slots that only touch (one ends when the other starts) do not overlap."""
        return self.start < other.end and other.start < self.end

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} UTC ({self.duration_minutes} min)"


@dataclass(frozen=True)
class ClassResult:
    """What the trainer records after the class: 1 to 2000 characters, trimmed."""

    text: str

    def __post_init__(self) -> None:
        text = require_text("result", self.text, max_length=MAX_RESULT_LENGTH, multiline=True)
        object.__setattr__(self, "text", text)

    def __str__(self) -> str:
        return self.text


class ScheduleNotFound(NotFound):
    default_reason = "SCHEDULE_NOT_FOUND"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"no schedule for order {order_id}", metadata={"order_id": order_id})


class ScheduleOfAnotherTrainer(IllegalTransition):
    """The schedule moved to another trainer after the caller last saw it."""

    default_reason = "SCHEDULE_OF_ANOTHER_TRAINER"

    def __init__(self, order_id: str, holder: str, trainer_id: str) -> None:
        super().__init__(
            f"schedule of order {order_id} is held by trainer {holder!r}, not {trainer_id!r}",
            metadata={"order_id": order_id},
        )


def _slot_metadata(prefix: str, slot: TimeSlot | None) -> dict[str, str]:
    if slot is None:
        return {}
    return {
        f"{prefix}start_time": slot.start.isoformat().replace("+00:00", "Z"),
        f"{prefix}end_time": slot.end.isoformat().replace("+00:00", "Z"),
    }


class TrainerDoubleBooked(IllegalTransition):
    """The slot overlaps another booked schedule of the trainer; the metadata names it
    (``clashing_order_id``, ``clashing_start_time``, ``clashing_end_time``)."""

    default_reason = "SCHEDULE_CLASH"

    def __init__(self, trainer_id: str, slot: TimeSlot, clash: Schedule) -> None:
        super().__init__(
            f"trainer {trainer_id!r} is already booked at {clash.slot} for order {clash.order_id}; "
            f"{slot} overlaps it",
            metadata={
                "trainer_id": trainer_id,
                "clashing_order_id": clash.order_id,
                **_slot_metadata("clashing_", clash.slot),
            },
        )


class ScheduleAlreadyConfirmed(IllegalTransition):
    default_reason = "SCHEDULE_ALREADY_CONFIRMED"

    def __init__(self, schedule: Schedule) -> None:
        super().__init__(
            f"schedule of order {schedule.order_id} is already confirmed for {schedule.slot}; "
            "a confirmed schedule cannot be moved",
            metadata={"order_id": schedule.order_id, **_slot_metadata("", schedule.slot)},
        )


class ScheduleNotConfirmed(IllegalTransition):
    default_reason = "SCHEDULE_NOT_CONFIRMED"

    def __init__(self, schedule: Schedule) -> None:
        super().__init__(
            f"schedule of order {schedule.order_id} is {schedule.status.value}; "
            "a class result needs a confirmed schedule",
            metadata={
                "order_id": schedule.order_id,
                "schedule_status": f"SCHEDULE_STATUS_{schedule.status.value}",
            },
        )


class ScheduleWasCancelled(IllegalTransition):
    default_reason = "SCHEDULE_CANCELLED"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"schedule of order {order_id} was cancelled", metadata={"order_id": order_id}
        )


class ClassAlreadyHeld(IllegalTransition):
    default_reason = "CLASS_ALREADY_HELD"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"schedule of order {order_id}: class already held", metadata={"order_id": order_id}
        )


class ClassResultAlreadyRegistered(IllegalTransition):
    default_reason = "CLASS_RESULT_ALREADY_REGISTERED"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"a different class result is already registered for order {order_id}",
            metadata={"order_id": order_id},
        )


@dataclass(kw_only=True)
class Schedule(Aggregate):
    order_id: str
    trainer_id: str
    customer_id: str
    class_name: str
    created_at: datetime
    updated_at: datetime
    status: ScheduleStatus = ScheduleStatus.REQUESTED
    slot: TimeSlot | None = None
    class_result: ClassResult | None = None
    cancel_reason: str = ""
    assignment_version: int = 0
    """Version of the manager's assignment this schedule follows (to ignore stale ones)."""

    @classmethod
    def request(
        cls,
        *,
        order_id: str,
        trainer_id: str,
        customer_id: str,
        class_name: str,
        assignment_version: int,
        now: datetime,
    ) -> Schedule:
        """A trainer was assigned: the schedule waits for the trainer's confirmation."""
        if not trainer_id:
            raise InvalidValue(f"a schedule request for order {order_id} needs a trainer_id")
        schedule = cls(
            order_id=order_id,
            trainer_id=trainer_id,
            customer_id=customer_id,
            class_name=class_name,
            assignment_version=assignment_version,
            created_at=now,
            updated_at=now,
        )
        schedule._touch()
        return schedule

    @classmethod
    def cancelled_before_assignment(cls, *, order_id: str, reason: str, now: datetime) -> Schedule:
        """The order was cancelled before its trainer assignment arrived here.

        The cancelled schedule is kept (without a trainer) so a late assignment does not
        open it again.
        """
        reason = cancel_reason(reason)
        schedule = cls(
            order_id=order_id,
            trainer_id="",
            customer_id="",
            class_name="",
            status=ScheduleStatus.CANCELLED,
            cancel_reason=reason,
            created_at=now,
            updated_at=now,
        )
        schedule._record(ScheduleCancelled(order_id=order_id, trainer_id="", reason=reason))
        return schedule

    @property
    def booked(self) -> bool:
        return self.status.booked

    def reassign(
        self,
        *,
        trainer_id: str,
        customer_id: str,
        class_name: str,
        assignment_version: int,
        now: datetime,
    ) -> None:
        """A (re-)assignment arrived. Only a REQUESTED schedule follows it; an assignment
        older than the one already followed, or one reaching a cancelled, confirmed or
        held schedule, changes nothing."""
        if (
            assignment_version < self.assignment_version
            or self.status is not ScheduleStatus.REQUESTED
        ):
            return
        if not trainer_id:
            raise InvalidValue(f"a schedule request for order {self.order_id} needs a trainer_id")
        if assignment_version == self.assignment_version and trainer_id == self.trainer_id:
            return
        self.trainer_id = trainer_id
        self.customer_id = customer_id
        self.class_name = class_name
        self.assignment_version = assignment_version
        self.updated_at = now
        self._touch()

    def confirm(
        self, trainer_id: str, slot: TimeSlot, booked: Iterable[Schedule], now: datetime
    ) -> None:
        """The trainer commits to the slot; ``booked`` are the trainer's other booked
        schedules that may overlap it. Confirming again with the same slot changes nothing."""
        self._require_trainer(trainer_id)
        if self.status is ScheduleStatus.CONFIRMED and self.slot == slot:
            return
        self._require_not_final()
        if self.status is ScheduleStatus.CONFIRMED:
            raise ScheduleAlreadyConfirmed(self)
        for other in booked:
            if self._clashes_with(other, slot):
                raise TrainerDoubleBooked(self.trainer_id, slot, other)
        self.status = ScheduleStatus.CONFIRMED
        self.slot = slot
        self.updated_at = now
        self._record(
            ScheduleConfirmed(
                order_id=self.order_id,
                trainer_id=self.trainer_id,
                start_time=slot.start,
                duration_minutes=slot.duration_minutes,
            )
        )

    def register_result(self, trainer_id: str, result: ClassResult, now: datetime) -> None:
        """The class was held. Registering the same result again changes nothing."""
        self._require_trainer(trainer_id)
        if self.status is ScheduleStatus.CLASS_COMPLETED:
            if result == self.class_result:
                return
            raise ClassResultAlreadyRegistered(self.order_id)
        if self.status is not ScheduleStatus.CONFIRMED:
            raise ScheduleNotConfirmed(self)
        self.status = ScheduleStatus.CLASS_COMPLETED
        self.class_result = result
        self.updated_at = now
        self._record(
            ClassResultRegistered(
                order_id=self.order_id,
                trainer_id=self.trainer_id,
                customer_id=self.customer_id,
                result=result.text,
            )
        )

    def cancel(self, reason: str, now: datetime) -> None:
        """A manager cancels the schedule (trainers ask a manager to re-assign or cancel).

        Cancelling a cancelled schedule changes nothing; a held class stays held.
        """
        reason = cancel_reason(reason)
        if self.status is ScheduleStatus.CANCELLED:
            return
        if self.status is ScheduleStatus.CLASS_COMPLETED:
            raise ClassAlreadyHeld(self.order_id)
        self.status = ScheduleStatus.CANCELLED
        self.cancel_reason = reason
        self.updated_at = now
        self._record(
            ScheduleCancelled(order_id=self.order_id, trainer_id=self.trainer_id, reason=reason)
        )

    def _require_trainer(self, trainer_id: str) -> None:
        if trainer_id != self.trainer_id:
            raise ScheduleOfAnotherTrainer(self.order_id, self.trainer_id, trainer_id)

    def _require_not_final(self) -> None:
        if self.status is ScheduleStatus.CANCELLED:
            raise ScheduleWasCancelled(self.order_id)
        if self.status is ScheduleStatus.CLASS_COMPLETED:
            raise ClassAlreadyHeld(self.order_id)

    def _clashes_with(self, other: Schedule, slot: TimeSlot) -> bool:
        return (
            other.order_id != self.order_id
            and other.trainer_id == self.trainer_id
            and other.booked
            and other.slot is not None
            and other.slot.overlaps(slot)
        )
