"""The events status_svc reads, as it receives them from the other contexts.

Field names are those of the ``events.proto`` payloads (the consumer decodes them by
name), plus what the envelope says about the event: its id, when it happened and the
version of the aggregate that published it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ptkit.domain import DomainEvent
from ptkit.statuses import AssignmentStatus, OrderStatus, ScheduleStatus

Fact = str | datetime | enum.Enum
Report = dict[str, Fact | None]
"""What an event tells about its order, field of the view by field."""


class Origin(enum.Enum):
    """The aggregate whose version an event carries: one of each per order."""

    ORDER = "order"
    ASSIGNMENT = "assignment"
    SCHEDULE = "schedule"


@dataclass(frozen=True, kw_only=True)
class ObservedEvent(DomainEvent):
    """A domain event of another context, as it arrived at status_svc."""

    origin: ClassVar[Origin]
    event_id: str
    aggregate_version: int
    occurred_at: datetime | None

    def reports(self) -> Report:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str
    customer_name: str
    class_name: str

    def reports(self) -> Report:
        return {
            "order_status": OrderStatus.PLACED,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "class_name": self.class_name,
        }


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str
    reason: str

    def reports(self) -> Report:
        return {"order_status": OrderStatus.CANCELLED, "customer_id": self.customer_id}


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str

    def reports(self) -> Report:
        return {"order_status": OrderStatus.CONFIRMED, "customer_id": self.customer_id}


@dataclass(frozen=True, kw_only=True)
class OrderCompleted(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str

    def reports(self) -> Report:
        return {"order_status": OrderStatus.COMPLETED, "customer_id": self.customer_id}


@dataclass(frozen=True, kw_only=True)
class TrainerAssigned(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ASSIGNMENT
    trainer_id: str
    trainer_name: str
    customer_id: str
    class_name: str

    def reports(self) -> Report:
        return {
            "reported_assignment_status": AssignmentStatus.TRAINER_ASSIGNED,
            "trainer_id": self.trainer_id,
            "customer_id": self.customer_id,
            "class_name": self.class_name,
        }


@dataclass(frozen=True, kw_only=True)
class AssignmentCancelled(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ASSIGNMENT
    trainer_id: str
    reason: str

    def reports(self) -> Report:
        return {
            "reported_assignment_status": AssignmentStatus.CANCELLED,
            "trainer_id": self.trainer_id,
        }


@dataclass(frozen=True, kw_only=True)
class ScheduleConfirmed(ObservedEvent):
    origin: ClassVar[Origin] = Origin.SCHEDULE
    trainer_id: str
    start_time: datetime | None
    duration_minutes: int

    def reports(self) -> Report:
        return {
            "reported_schedule_status": ScheduleStatus.CONFIRMED,
            "trainer_id": self.trainer_id,
            "start_time": self.start_time,
        }


@dataclass(frozen=True, kw_only=True)
class ScheduleCancelled(ObservedEvent):
    origin: ClassVar[Origin] = Origin.SCHEDULE
    trainer_id: str
    reason: str

    def reports(self) -> Report:
        return {
            "reported_schedule_status": ScheduleStatus.CANCELLED,
            "trainer_id": self.trainer_id,
        }


@dataclass(frozen=True, kw_only=True)
class ClassResultRegistered(ObservedEvent):
    origin: ClassVar[Origin] = Origin.SCHEDULE
    trainer_id: str
    customer_id: str
    result: str

    def reports(self) -> Report:
        return {
            "reported_schedule_status": ScheduleStatus.CLASS_COMPLETED,
            "trainer_id": self.trainer_id,
            "customer_id": self.customer_id,
            "class_result": self.result,
            "result_recorded_at": self.occurred_at,
        }


@dataclass(frozen=True, kw_only=True)
class CancellationRefused(ObservedEvent):
    """manager_svc: the order's cancellation was refused, the class was already held."""

    origin: ClassVar[Origin] = Origin.ASSIGNMENT
    customer_id: str
    reason: str

    def reports(self) -> Report:
        return {"cancellation_refused_reason": self.reason, "customer_id": self.customer_id}


OBSERVED_EVENTS: tuple[type[ObservedEvent], ...] = (
    OrderPlaced,
    OrderCancelled,
    OrderConfirmed,
    OrderCompleted,
    TrainerAssigned,
    AssignmentCancelled,
    ScheduleConfirmed,
    ScheduleCancelled,
    ClassResultRegistered,
    CancellationRefused,
)
