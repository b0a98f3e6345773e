"""Assignment: AWAITING_TRAINER -> TRAINER_ASSIGNED -> ORDER_CONFIRMED, or CANCELLED.

An order cancelled after its class was held is not cancelled here: trainer_svc refuses
to cancel the schedule, and the assignment keeps its status with the refusal recorded
(:meth:`Assignment.refuse_cancellation`, ADR 0007)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ptkit.domain import Aggregate, IllegalTransition, NotFound
from ptkit.statuses import AssignmentStatus

from .events import AssignmentCancelled, CancellationRefused, TrainerAssigned
from .roster import Trainer

MAX_TEXT_LENGTH = 500
SCHEDULE_CANCELLED = "schedule cancelled"


# The statuses in which an assignment counts towards its trainer's load.
HOLDING_STATUSES = frozenset({AssignmentStatus.TRAINER_ASSIGNED, AssignmentStatus.ORDER_CONFIRMED})


class AssignmentNotFound(NotFound):
    default_reason = "ASSIGNMENT_NOT_FOUND"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"no assignment for order {order_id}", metadata={"order_id": order_id})


class AssignmentClosed(IllegalTransition):
    """The order was cancelled, so its assignment takes no trainer any more (order_svc's
    OrderAlreadyCancelled is another thing: cancelling an order twice)."""

    default_reason = "ASSIGNMENT_CLOSED"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id} is cancelled: no trainer can be assigned",
            metadata={"order_id": order_id},
        )


class OrderAlreadyConfirmed(IllegalTransition):
    default_reason = "ORDER_ALREADY_CONFIRMED"

    def __init__(self, order_id: str, trainer_id: str) -> None:
        super().__init__(
            f"order {order_id} is already confirmed by trainer {trainer_id}; "
            "the trainer can no longer change",
            metadata={"order_id": order_id, "trainer_id": trainer_id},
        )


def bounded_text(text: str) -> str:
    """Text that comes from another context's event: trimmed and cut, never refused."""
    return text.strip()[:MAX_TEXT_LENGTH]


@dataclass(kw_only=True)
class Assignment(Aggregate):
    order_id: str
    customer_id: str
    class_name: str
    preferred_start: datetime | None
    created_at: datetime
    updated_at: datetime
    status: AssignmentStatus = AssignmentStatus.AWAITING_TRAINER
    trainer_id: str = ""
    trainer_name: str = ""
    cancel_reason: str = ""
    schedule_note: str = ""
    cancellation_refused_reason: str = ""
    """Why the order's cancellation was refused (the class was already held); "" if it
    never was."""

    @classmethod
    def open(
        cls,
        *,
        order_id: str,
        customer_id: str,
        class_name: str,
        preferred_start: datetime | None,
        now: datetime,
    ) -> Assignment:
        """An order was placed: it waits for a trainer."""
        assignment = cls(
            order_id=order_id,
            customer_id=customer_id,
            class_name=class_name,
            preferred_start=preferred_start,
            created_at=now,
            updated_at=now,
        )
        assignment._touch()
        return assignment

    @classmethod
    def cancelled_before_placed(cls, *, order_id: str, reason: str, now: datetime) -> Assignment:
        """OrderCancelled overtook OrderPlaced: a tombstone, so the late OrderPlaced
        does not open the assignment again."""
        assignment = cls(
            order_id=order_id,
            customer_id="",
            class_name="",
            preferred_start=None,
            created_at=now,
            updated_at=now,
        )
        assignment.cancel(reason, now)
        return assignment

    @property
    def is_cancelled(self) -> bool:
        return self.status is AssignmentStatus.CANCELLED

    @property
    def holds_schedule(self) -> bool:
        """A trainer was assigned, so trainer_svc may hold a schedule for this order."""
        return bool(self.trainer_id) and not self.is_cancelled

    def record_placement(
        self, *, customer_id: str, class_name: str, preferred_start: datetime | None, now: datetime
    ) -> None:
        """OrderPlaced arrived after the tombstone: keep it cancelled, learn what it was."""
        if self.customer_id:
            return
        self.customer_id = customer_id
        self.class_name = class_name
        self.preferred_start = preferred_start
        self.updated_at = now
        self._touch()

    def assign(self, trainer: Trainer, now: datetime) -> None:
        """Give the order to ``trainer``; another trainer may take over until the order
        is confirmed. Assigning the same trainer again changes nothing."""
        if self.status is AssignmentStatus.CANCELLED:
            raise AssignmentClosed(self.order_id)
        if self.status is AssignmentStatus.ORDER_CONFIRMED:
            raise OrderAlreadyConfirmed(self.order_id, self.trainer_id)
        trainer.require_active()
        if (
            self.status is AssignmentStatus.TRAINER_ASSIGNED
            and self.trainer_id == trainer.trainer_id
        ):
            return
        self.status = AssignmentStatus.TRAINER_ASSIGNED
        self.trainer_id = trainer.trainer_id
        self.trainer_name = trainer.name
        self.updated_at = now
        self._record(
            TrainerAssigned(
                order_id=self.order_id,
                trainer_id=self.trainer_id,
                trainer_name=self.trainer_name,
                customer_id=self.customer_id,
                class_name=self.class_name,
                preferred_start=self.preferred_start,
            )
        )

    def confirm(self, trainer_id: str, trainer_name: str, now: datetime) -> None:
        """The trainer confirmed the schedule: the order is confirmed with that trainer.

        A cancelled or already confirmed assignment does not change (late or duplicate
        event). The trainer who confirmed is the one who holds the class, so if the
        order was handed to another trainer meanwhile, the confirming trainer wins.
        """
        if self.status in (AssignmentStatus.CANCELLED, AssignmentStatus.ORDER_CONFIRMED):
            return
        if trainer_id and trainer_id != self.trainer_id:
            self.trainer_id = trainer_id
            self.trainer_name = trainer_name
        self.status = AssignmentStatus.ORDER_CONFIRMED
        self.updated_at = now
        self._touch()

    def cancel(self, reason: str, now: datetime, schedule_note: str = "") -> None:
        """The order was cancelled. ``schedule_note`` says what became of the trainer's
        schedule. Cancelling twice changes nothing."""
        if self.is_cancelled:
            return
        self.status = AssignmentStatus.CANCELLED
        self.cancel_reason = bounded_text(reason)
        self.schedule_note = bounded_text(schedule_note)
        self.updated_at = now
        self._record(
            AssignmentCancelled(
                order_id=self.order_id, trainer_id=self.trainer_id, reason=self.cancel_reason
            )
        )

    def refuse_cancellation(self, refusal: str, now: datetime) -> None:
        """The order was cancelled, but trainer_svc refused to cancel the schedule: the
        class was already held. The cancellation cannot be applied, so the assignment is
        not cancelled (it keeps its status); the refusal is recorded and announced, and
        the order is held after all. Recording it twice changes nothing."""
        if self.is_cancelled or self.cancellation_refused_reason:
            return
        self.cancellation_refused_reason = bounded_text(refusal) or "the class was already held"
        self.schedule_note = bounded_text(f"schedule not cancelled: {refusal}")
        self.updated_at = now
        self._record(
            CancellationRefused(
                order_id=self.order_id,
                customer_id=self.customer_id,
                reason=self.cancellation_refused_reason,
            )
        )
