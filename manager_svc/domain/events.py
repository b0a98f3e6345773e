"""Events the Assignment aggregate records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ptkit.domain import DomainEvent


@dataclass(frozen=True, kw_only=True)
class TrainerAssigned(DomainEvent):
    trainer_id: str
    trainer_name: str
    customer_id: str
    class_name: str
    preferred_start: datetime | None


@dataclass(frozen=True, kw_only=True)
class AssignmentCancelled(DomainEvent):
    trainer_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CancellationRefused(DomainEvent):
    """trainer_svc refused to cancel the schedule of a cancelled order: the class was
    already held, so the cancellation cannot be applied (the order is held after all)."""

    customer_id: str
    reason: str
