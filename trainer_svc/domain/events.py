"""Events the Schedule aggregate records (fields named as in events.proto)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ptkit.domain import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ScheduleConfirmed(DomainEvent):
    trainer_id: str
    start_time: datetime
    duration_minutes: int


@dataclass(frozen=True, kw_only=True)
class ScheduleCancelled(DomainEvent):
    trainer_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ClassResultRegistered(DomainEvent):
    trainer_id: str
    customer_id: str
    result: str
