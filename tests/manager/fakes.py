"""manager_svc's repositories in memory, over the kit's one fake unit of work, and a
scripted trainer_svc.

The contract suite (tests/manager/integration/test_repository_contract.py) runs the same
tests against these repositories and the SQL ones on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from manager_svc.application.ports import (
    ScheduleCancelRefused,
    ScheduleCancelUnavailable,
)
from manager_svc.domain.model import (
    HOLDING_STATUSES,
    Assignment,
    AssignmentNotFound,
    AssignmentStatus,
)
from manager_svc.domain.roster import Trainer, TrainerNotFound
from ptkit.paging import PageRequest, page_in_memory
from ptkit.testing import FakeUnitOfWork, InMemoryRepository


class InMemoryTrainers(InMemoryRepository[Trainer]):
    table = "trainers"
    key = "trainer_id"
    unique = (("registered_by", "request_id"),)

    def _unique_values(self, item: Trainer, columns: tuple[str, ...]) -> tuple[Any, ...] | None:
        # no request id is stored as NULL, which the unique constraint lets repeat
        return None if not item.request_id else super()._unique_values(item, columns)

    async def add(self, trainer: Trainer) -> None:
        self._insert(trainer)

    async def find(self, trainer_id: str) -> Trainer | None:
        return self._find(trainer_id)

    async def get(self, trainer_id: str) -> Trainer:
        trainer = await self.find(trainer_id)
        if trainer is None:
            raise TrainerNotFound(trainer_id)
        return trainer

    async def find_by_request(self, registered_by: str, request_id: str) -> Trainer | None:
        return next(
            (
                t
                for t in self._rows()
                if t.registered_by == registered_by and t.request_id == request_id
            ),
            None,
        )

    async def list(self, page: PageRequest | None = None) -> list[Trainer]:
        if page is None:
            return sorted(self._rows(), key=lambda t: (t.name, t.trainer_id))
        return page_in_memory(self._rows(), page)


class InMemoryAssignments(InMemoryRepository[Assignment]):
    table = "assignments"
    key = "order_id"

    async def add(self, assignment: Assignment) -> None:
        self._insert(assignment)

    async def find(self, order_id: str) -> Assignment | None:
        return self._find(order_id)

    async def get(self, order_id: str) -> Assignment:
        assignment = await self.find(order_id)
        if assignment is None:
            raise AssignmentNotFound(order_id)
        return assignment

    async def list(
        self, status: AssignmentStatus | None, trainer_id: str | None, page: PageRequest
    ) -> list[Assignment]:
        wanted = [
            a
            for a in self._rows()
            if (status is None or a.status is status)
            and (not trainer_id or a.trainer_id == trainer_id)
        ]
        return page_in_memory(wanted, page)

    async def load_per_trainer(self) -> dict[str, int]:
        load: dict[str, int] = {}
        for assignment in self._rows():
            if assignment.status in HOLDING_STATUSES:
                load[assignment.trainer_id] = load.get(assignment.trainer_id, 0) + 1
        return load


class FakeManagerUnitOfWork(FakeUnitOfWork):
    """manager_svc's unit of work in memory; ``published``, ``commits`` and
    :meth:`assignment` say what the committed transactions wrote."""

    repositories = {"trainers": InMemoryTrainers, "assignments": InMemoryAssignments}
    trainers: InMemoryTrainers
    assignments: InMemoryAssignments

    def assignment(self, order_id: str) -> Assignment:
        """The committed assignment of the order."""
        return self.committed("assignments", order_id)


class FakeScheduleCanceller:
    """Answers CancelSchedule with a scripted outcome and remembers the calls."""

    def __init__(self, outcome: Exception | None = None) -> None:
        self.outcome = outcome
        self.calls: list[tuple[str, str]] = []

    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        self.calls.append((order_id, reason))
        if self.outcome is not None:
            raise self.outcome


def refused(detail: str = "order is already held") -> FakeScheduleCanceller:
    return FakeScheduleCanceller(ScheduleCancelRefused(detail))


def unavailable() -> FakeScheduleCanceller:
    return FakeScheduleCanceller(ScheduleCancelUnavailable("trainer_svc: UNAVAILABLE"))
