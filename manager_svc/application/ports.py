"""What the use cases need from the outside world."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from manager_svc.domain.model import Assignment, AssignmentStatus
from manager_svc.domain.roster import Trainer
from ptkit.paging import Keyset, PageRequest, SortKey
from ptkit.ports import UnitOfWork as BaseUnitOfWork

TRAINER_PAGES = Keyset("trainers", SortKey("name"), SortKey("trainer_id"))
"""The roster is listed by name."""

ASSIGNMENT_PAGES = Keyset(
    "assignments",
    SortKey("created_at", datetime, descending=True),
    SortKey("order_id", descending=True),
)
"""Assignments are listed newest first."""


class TrainerRepository(Protocol):
    async def add(self, trainer: Trainer) -> None: ...

    async def get(self, trainer_id: str) -> Trainer:
        """Raises TrainerNotFound."""
        ...

    async def find(self, trainer_id: str) -> Trainer | None: ...

    async def find_by_request(self, registered_by: str, request_id: str) -> Trainer | None: ...

    async def list(self, page: PageRequest | None = None) -> list[Trainer]:
        """The page's trainers (at most ``page.limit``) in TRAINER_PAGES order; without a
        page, every trainer of the roster."""
        ...


class AssignmentRepository(Protocol):
    async def add(self, assignment: Assignment) -> None: ...

    async def get(self, order_id: str) -> Assignment:
        """Raises AssignmentNotFound."""
        ...

    async def find(self, order_id: str) -> Assignment | None: ...

    async def list(
        self, status: AssignmentStatus | None, trainer_id: str | None, page: PageRequest
    ) -> list[Assignment]:
        """The page's assignments (at most ``page.limit``) in ASSIGNMENT_PAGES order,
        optionally only of one status and one trainer."""
        ...

    async def load_per_trainer(self) -> dict[str, int]:
        """How many assignments each trainer holds (TRAINER_ASSIGNED or ORDER_CONFIRMED)."""
        ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    trainers: TrainerRepository
    assignments: AssignmentRepository


class ScheduleCancelRefused(Exception):
    """trainer_svc refused to cancel the schedule for a business reason (the class was
    already held). Retrying will not change its mind."""


class ScheduleCancelUnavailable(Exception):
    """trainer_svc could not be asked in time; the cancellation must be tried again later."""


class ScheduleCanceller(Protocol):
    """trainer_svc's CancelSchedule, called synchronously while the order is cancelled."""

    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        """Cancel the order's schedule (idempotent on trainer_svc's side).

        Raises ScheduleCancelRefused or ScheduleCancelUnavailable.
        """
        ...
