"""OrderStatusView: what the studio knows about one order, told by the events of its
order, its assignment and its schedule. A read model, not an aggregate: it decides
nothing and records no events.

Events arrive in any order and more than once, so every field of the view is a
last-writer-wins register: a report is stamped ``(rank, version)`` — the rank of the
aggregate that made it for that field (the order is the authority on the customer, the
schedule on who holds the class), then that aggregate's version — and replaces the
value only when its stamp is higher than the stamp of the value held; an empty report
never erases a known value. Keeping the maximum does not depend on the order of
arrival, and a second copy changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from ptkit.domain import NotFound
from ptkit.statuses import AssignmentStatus, OrderStatus, ScheduleStatus

from .events import Fact, ObservedEvent, Origin, TrainerAssigned

__all__ = ["AssignmentStatus", "OrderStatus", "OrderStatusView", "ScheduleStatus"]

Stamp = tuple[int, int]
"""(rank of the reporting aggregate for the field, that aggregate's version)."""

REPORTERS: dict[str, tuple[Origin, ...]] = {
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
    # only manager_svc learns that a cancellation came too late (ADR 0007); the order's
    # own OrderCompleted says COMPLETED with a higher order version than its cancellation
    "cancellation_refused_reason": (Origin.ASSIGNMENT,),
}


def stamp(name: str, origin: Origin, version: int) -> Stamp:
    reporters = REPORTERS[name]
    return (len(reporters) - reporters.index(origin), version)


def _tie_break(value: Fact) -> tuple[int, str | datetime]:
    """Orders two values with the same stamp (never seen from consistent publishers, but
    the outcome must not depend on arrival order even then)."""
    if isinstance(value, enum.Enum):
        return (list(type(value)).index(value), "")
    return (0, value)


def last_writer_wins(new: Stamp, value: Fact, held: Stamp | None, held_value: Fact) -> bool:
    """Whether a report stamped ``new`` replaces the value stamped ``held``."""
    return held is None or (new, _tie_break(value)) > (held, _tie_break(held_value))


class OrderStatusNotFound(NotFound):
    default_reason = "ORDER_STATUS_NOT_FOUND"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"no status for order {order_id} (unknown order, or its events have not arrived yet)",
            metadata={"order_id": order_id},
        )


@dataclass(kw_only=True)
class OrderStatusView:
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
    cancellation_refused_reason: str = ""
    """Why the customer's cancellation could not be applied (the class had already
    been held); "" unless it was refused."""
    updated_at: datetime | None = None
    stamps: dict[str, Stamp] = field(default_factory=dict)
    """The last-writer-wins stamp of every field that holds a value."""
    trainer_names: dict[str, tuple[int, str]] = field(default_factory=dict)
    """trainer_id -> (assignment version, name), from every TrainerAssigned seen."""
    version: int = 0
    """Bumped by every change: replicas folding events of one order do not overwrite
    each other (optimistic locking)."""

    def observe(self, event: ObservedEvent) -> bool:
        """Fold one event in; returns whether the view changed (a late or repeated
        report changes nothing)."""
        changed = False
        for name, value in event.reports().items():
            changed |= self._learn(name, value, stamp(name, event.origin, event.aggregate_version))
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
            self.version += 1
        return changed

    def _learn(self, name: str, value: Fact | None, new: Stamp) -> bool:
        if value is None or value == "":
            return False
        if not last_writer_wins(new, value, self.stamps.get(name), getattr(self, name)):
            return False
        setattr(self, name, value)
        self.stamps[name] = new
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
        if self.reported_schedule_status is not None and self.reported_schedule_status.booked:
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
