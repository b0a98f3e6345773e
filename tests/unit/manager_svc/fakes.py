"""In-memory fakes of manager_svc's ports for domain and policy unit tests."""

from __future__ import annotations

import copy
from types import TracebackType
from typing import Self

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
from ptkit.domain import Aggregate, DomainEvent


class FakeTrainerRepository:
    def __init__(self, trainers: dict[str, Trainer]) -> None:
        self.items = trainers

    async def add(self, trainer: Trainer) -> None:
        self.items[trainer.trainer_id] = trainer

    async def find(self, trainer_id: str) -> Trainer | None:
        return self.items.get(trainer_id)

    async def get(self, trainer_id: str) -> Trainer:
        if trainer_id not in self.items:
            raise TrainerNotFound(trainer_id)
        return self.items[trainer_id]

    async def list(self) -> list[Trainer]:
        return sorted(self.items.values(), key=lambda t: (t.name, t.trainer_id))


class FakeAssignmentRepository:
    def __init__(self, assignments: dict[str, Assignment]) -> None:
        self.items = assignments

    async def add(self, assignment: Assignment) -> None:
        self.items[assignment.order_id] = assignment

    async def find(self, order_id: str) -> Assignment | None:
        return self.items.get(order_id)

    async def get(self, order_id: str) -> Assignment:
        if order_id not in self.items:
            raise AssignmentNotFound(order_id)
        return self.items[order_id]

    async def list(
        self, status: AssignmentStatus | None, trainer_id: str | None
    ) -> list[Assignment]:
        return [
            a
            for a in self.items.values()
            if (status is None or a.status is status)
            and (not trainer_id or a.trainer_id == trainer_id)
        ]

    async def load_per_trainer(self) -> dict[str, int]:
        load: dict[str, int] = {}
        for assignment in self.items.values():
            if assignment.status in HOLDING_STATUSES:
                load[assignment.trainer_id] = load.get(assignment.trainer_id, 0) + 1
        return load


class FakeUnitOfWork:
    """Changes become visible to the next unit of work only when committed; committed
    events are collected in ``published`` (what the outbox would hold)."""

    def __init__(self) -> None:
        self.committed_trainers: dict[str, Trainer] = {}
        self.committed_assignments: dict[str, Assignment] = {}
        self.published: list[DomainEvent] = []
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.trainers = FakeTrainerRepository(copy.deepcopy(self.committed_trainers))
        self.assignments = FakeAssignmentRepository(copy.deepcopy(self.committed_assignments))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        aggregates: list[Aggregate] = [
            *self.trainers.items.values(),
            *self.assignments.items.values(),
        ]
        for aggregate in aggregates:
            self.published.extend(aggregate.events)
            aggregate.events.clear()
        self.committed_trainers = copy.deepcopy(self.trainers.items)
        self.committed_assignments = copy.deepcopy(self.assignments.items)
        self.commits += 1

    def assignment(self, order_id: str) -> Assignment:
        return self.committed_assignments[order_id]


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
