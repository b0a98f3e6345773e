"""What the use cases need from the outside world."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ptkit.paging import Keyset, PageRequest, SortKey
from ptkit.ports import UnitOfWork as BaseUnitOfWork
from trainer_svc.domain.model import Schedule, ScheduleStatus, TimeSlot

SCHEDULE_PAGES = Keyset(
    "schedules",
    SortKey("created_at", datetime, descending=True),
    SortKey("order_id", descending=True),
)
"""Schedules are listed newest first."""


class ScheduleRepository(Protocol):
    async def add(self, schedule: Schedule) -> None:
        """Raises ConcurrencyConflict when a schedule for the order was added meanwhile."""
        ...

    async def get(self, order_id: str) -> Schedule:
        """Raises ScheduleNotFound."""
        ...

    async def find(self, order_id: str) -> Schedule | None: ...

    async def list(
        self, trainer_id: str | None, status: ScheduleStatus | None, page: PageRequest
    ) -> list[Schedule]:
        """The page's schedules (at most ``page.limit``) in SCHEDULE_PAGES order; None
        means any trainer / any status."""
        ...

    async def booked_overlapping(
        self, trainer_id: str, slot: TimeSlot, excluding_order_id: str
    ) -> list[Schedule]:
        """The trainer's booked schedules whose slot overlaps ``slot``.

        Serializes confirmations per trainer: until this unit of work ends, a concurrent
        call for the same trainer waits, and then sees what this one committed.
        """
        ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    schedules: ScheduleRepository
