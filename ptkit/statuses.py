"""The published language of the lifecycles: the statuses each context reports in its
API and implies by its events. Declared once; the owning domain moves through them and
status_svc's read model reads them (the protos mirror them as enums)."""

from __future__ import annotations

import enum


class OrderStatus(enum.Enum):
    """An Order: PLACED -> CONFIRMED -> COMPLETED, or CANCELLED (never after COMPLETED).

    A cancellation refused because the class had already been held takes the order
    CANCELLED -> COMPLETED (ADR 0007)."""

    PLACED = "PLACED"
    CONFIRMED = "CONFIRMED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class AssignmentStatus(enum.Enum):
    """An Assignment: AWAITING_TRAINER -> TRAINER_ASSIGNED -> ORDER_CONFIRMED, or CANCELLED
    (not when trainer_svc refused to cancel the held class: the status stays, ADR 0007)."""

    AWAITING_TRAINER = "AWAITING_TRAINER"
    TRAINER_ASSIGNED = "TRAINER_ASSIGNED"
    ORDER_CONFIRMED = "ORDER_CONFIRMED"
    CANCELLED = "CANCELLED"


class ScheduleStatus(enum.Enum):
    """A Schedule: REQUESTED -> CONFIRMED -> CLASS_COMPLETED, or CANCELLED (not after the class)."""

    REQUESTED = "REQUESTED"
    CONFIRMED = "CONFIRMED"
    CLASS_COMPLETED = "CLASS_COMPLETED"
    CANCELLED = "CANCELLED"

    @property
    def booked(self) -> bool:
        """The trainer is committed to the schedule's time slot."""
        return self in (ScheduleStatus.CONFIRMED, ScheduleStatus.CLASS_COMPLETED)
