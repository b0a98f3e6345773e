"""OrderStatusView: what is known about one order, folded from the events of three
aggregates (the order, its assignment and its schedule).

Events arrive in any order and more than once, so the view is built to end the same
whatever the order: every field keeps the value of the most authoritative, most recent
report. A report is stamped ``(authority, version)``: the authority of the aggregate
that made it for that field (e.g. the order is the authority on the customer, the
schedule on who holds the class), then that aggregate's version. A field takes a new
value only when its stamp is higher than the stamp of the value it holds, and an empty
value never erases a known one. "Keep the maximum" does not depend on the order of
arrival and a second copy changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from ptkit.domain import Aggregate, NotFound

from .events import (
    AssignmentCancelled,
    ClassResultRegistered,
    ObservedEvent,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    Origin,
    ScheduleCancelled,
    ScheduleConfirmed,
    TrainerAssigned,
)


class OrderStatus(enum.Enum):
    PLACED = "PLACED"
    CONFIRMED = "CONFIRMED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class AssignmentStatus(enum.Enum):
    AWAITING_TRAINER = "AWAITING_TRAINER"
    TRAINER_ASSIGNED = "TRAINER_ASSIGNED"
    ORDER_CONFIRMED = "ORDER_CONFIRMED"
    CANCELLED = "CANCELLED"


class ScheduleStatus(enum.Enum):
    REQUESTED = "REQUESTED"
    CONFIRMED = "CONFIRMED"
    CLASS_COMPLETED = "CLASS_COMPLETED"
    CANCELLED = "CANCELLED"


BOOKED = (ScheduleStatus.CONFIRMED, ScheduleStatus.CLASS_COMPLETED)

Stamp = tuple[int, int]
"""(authority of the reporting aggregate for the field, that aggregate's version)."""

Fact = str | datetime | enum.Enum

_AUTHORITIES: dict[str, tuple[Origin, ...]] = {
    # field: the aggregates that report it, most authoritative first
    "customer_id": (Origin.ORDER, Origin.ASSIGNMENT, Origin.SCHEDULE),
    "customer_name": (Origin.ORDER,),
    "class_name": (Origin.ORDER, Origin.ASSIGNMENT),
    # the trainer who confirmed the schedule holds the class, even if the manager
    # handed the order to someone else meanwhile (manager_svc follows the same rule)
    "trainer_id": (Origin.SCHEDULE, Origin.ASSIGNMENT),
    "start_time": (Origin.SCHEDULE,),
    "class_result": (Origin.SCHEDULE,),
    "result_recorded_at": (Origin.SCHEDULE,),
    "order_status": (Origin.ORDER,),
    "reported_assignment_status": (Origin.ASSIGNMENT,),
    "reported_schedule_status": (Origin.SCHEDULE,),
}


def _stamp(name: str, origin: Origin, version: int) -> Stamp:
    authorities = _AUTHORITIES[name]
    return (len(authorities) - authorities.index(origin), version)


def _rank(value: Fact) -> tuple[int, str | datetime]:
    """Breaks a tie between two values with the same stamp (never seen from consistent
    publishers, but the outcome must not depend on arrival order even then)."""
    if isinstance(value, enum.Enum):
        return (list(type(value)).index(value), "")
    return (0, value)


def _facts(event: ObservedEvent) -> list[tuple[str, Fact | None]]:
    """What an event tells the view, field by field."""
    match event:
        case OrderPlaced():
            return [
                ("order_status", OrderStatus.PLACED),
                ("customer_id", event.customer_id),
                ("customer_name", event.customer_name),
                ("class_name", event.class_name),
            ]
        case OrderConfirmed():
            return [("order_status", OrderStatus.CONFIRMED), ("customer_id", event.customer_id)]
        case OrderCompleted():
            return [("order_status", OrderStatus.COMPLETED), ("customer_id", event.customer_id)]
        case OrderCancelled():
            return [("order_status", OrderStatus.CANCELLED), ("customer_id", event.customer_id)]
        case TrainerAssigned():
            return [
                ("reported_assignment_status", AssignmentStatus.TRAINER_ASSIGNED),
                ("trainer_id", event.trainer_id),
                ("customer_id", event.customer_id),
                ("class_name", event.class_name),
            ]
        case AssignmentCancelled():
            return [
                ("reported_assignment_status", AssignmentStatus.CANCELLED),
                ("trainer_id", event.trainer_id),
            ]
        case ScheduleConfirmed():
            return [
                ("reported_schedule_status", ScheduleStatus.CONFIRMED),
                ("trainer_id", event.trainer_id),
                ("start_time", event.start_time),
            ]
        case ScheduleCancelled():
            return [
                ("reported_schedule_status", ScheduleStatus.CANCELLED),
                ("trainer_id", event.trainer_id),
            ]
        case ClassResultRegistered():
            return [
                ("reported_schedule_status", ScheduleStatus.CLASS_COMPLETED),
                ("trainer_id", event.trainer_id),
                ("customer_id", event.customer_id),
                ("class_result", event.result),
                ("result_recorded_at", event.occurred_at),
            ]
    return []


class OrderStatusNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"no status for order {order_id} (unknown order, or its events have not arrived yet)"
        )


@dataclass(kw_only=True)
class OrderStatusView(Aggregate):
    """Everything the read side knows about one order.

    ``reported_*_status`` are the statuses the assignment and schedule events reported;
    :attr:`assignment_status` and :attr:`schedule_status` also cover the steps those
    aggregates take without publishing an event (an assignment opens AWAITING_TRAINER, a
    schedule opens REQUESTED, an assignment becomes ORDER_CONFIRMED).
    """

    order_id: str
    customer_id: str = ""
    customer_name: str = ""
    class_name: str = ""
    trainer_id: str = ""
    start_time: datetime | None = None
    class_result: str = ""
    result_recorded_at: datetime | None = None
    order_status: OrderStatus | None = None
    reported_assignment_status: AssignmentStatus | None = None
    reported_schedule_status: ScheduleStatus | None = None
    updated_at: datetime | None = None
    stamps: dict[str, Stamp] = field(default_factory=dict)
    trainer_names: dict[str, tuple[int, str]] = field(default_factory=dict)
    """trainer_id -> (assignment version, name), from every TrainerAssigned seen."""

    def observe(self, event: ObservedEvent) -> bool:
        """Fold one event in; returns whether the view changed (a late or repeated
        report changes nothing)."""
        changed = False
        for name, value in _facts(event):
            changed |= self._learn(name, value, _stamp(name, event.origin, event.aggregate_version))
        if isinstance(event, TrainerAssigned):
            changed |= self._learn_trainer_name(
                event.trainer_id, event.trainer_name, event.aggregate_version
            )
        if event.occurred_at is not None and (
            self.updated_at is None or event.occurred_at > self.updated_at
        ):
            self.updated_at = event.occurred_at
            changed = True
        if changed:
            self._touch()
        return changed

    def _learn(self, name: str, value: Fact | None, stamp: Stamp) -> bool:
        if value is None or value == "":
            return False
        known = self.stamps.get(name)
        if known is not None and (stamp, _rank(value)) <= (known, _rank(getattr(self, name))):
            return False
        setattr(self, name, value)
        self.stamps[name] = stamp
        return True

    def _learn_trainer_name(self, trainer_id: str, name: str, version: int) -> bool:
        if not trainer_id or not name:
            return False
        known = self.trainer_names.get(trainer_id)
        if known is not None and (version, name) <= known:
            return False
        self.trainer_names[trainer_id] = (version, name)
        return True

    @property
    def trainer_name(self) -> str:
        known = self.trainer_names.get(self.trainer_id)
        return known[1] if known else ""

    @property
    def assignment_status(self) -> AssignmentStatus | None:
        reported = self.reported_assignment_status
        if reported is AssignmentStatus.CANCELLED:
            return reported
        if self.reported_schedule_status in BOOKED:
            return AssignmentStatus.ORDER_CONFIRMED
        if reported is not None:
            return reported
        if self.order_status is OrderStatus.CANCELLED:
            return AssignmentStatus.CANCELLED
        if self.order_status is not None:
            return AssignmentStatus.AWAITING_TRAINER
        return None

    @property
    def schedule_status(self) -> ScheduleStatus | None:
        if self.reported_schedule_status is not None:
            return self.reported_schedule_status
        if self.reported_assignment_status is AssignmentStatus.TRAINER_ASSIGNED:
            return ScheduleStatus.REQUESTED
        return None


@dataclass(frozen=True)
class ClassResult:
    """A class result as the customer reads it."""

    order_id: str
    customer_id: str
    class_name: str
    trainer_id: str
    trainer_name: str
    result: str
    recorded_at: datetime | None

    @classmethod
    def of(cls, view: OrderStatusView) -> ClassResult:
        return cls(
            order_id=view.order_id,
            customer_id=view.customer_id,
            class_name=view.class_name,
            trainer_id=view.trainer_id,
            trainer_name=view.trainer_name,
            result=view.class_result,
            recorded_at=view.result_recorded_at,
        )
