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


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str
    customer_name: str
    class_name: str


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str


@dataclass(frozen=True, kw_only=True)
class OrderCompleted(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ORDER
    customer_id: str


@dataclass(frozen=True, kw_only=True)
class TrainerAssigned(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ASSIGNMENT
    trainer_id: str
    trainer_name: str
    customer_id: str
    class_name: str


@dataclass(frozen=True, kw_only=True)
class AssignmentCancelled(ObservedEvent):
    origin: ClassVar[Origin] = Origin.ASSIGNMENT
    trainer_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ScheduleConfirmed(ObservedEvent):
    origin: ClassVar[Origin] = Origin.SCHEDULE
    trainer_id: str
    start_time: datetime | None
    duration_minutes: int


@dataclass(frozen=True, kw_only=True)
class ScheduleCancelled(ObservedEvent):
    origin: ClassVar[Origin] = Origin.SCHEDULE
    trainer_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ClassResultRegistered(ObservedEvent):
    origin: ClassVar[Origin] = Origin.SCHEDULE
    trainer_id: str
    customer_id: str
    result: str


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
)
