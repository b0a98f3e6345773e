"""Events the Order aggregate records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ptkit.domain import DomainEvent


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(DomainEvent):
    customer_id: str
    customer_name: str
    class_name: str
    preferred_start: datetime | None


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(DomainEvent):
    customer_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(DomainEvent):
    customer_id: str


@dataclass(frozen=True, kw_only=True)
class OrderCompleted(DomainEvent):
    customer_id: str
