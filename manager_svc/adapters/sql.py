"""SQLAlchemy adapter: the trainers and assignments tables, their repositories and
manager_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Index, String, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from manager_svc.domain.model import (
    HOLDING_STATUSES,
    Assignment,
    AssignmentNotFound,
    AssignmentStatus,
)
from manager_svc.domain.roster import Trainer, TrainerNotFound
from ptkit.mapping import AggregateMapper
from ptkit.migrations import service_metadata
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository

metadata = service_metadata(Path(__file__).with_name("migrations"))
messaging = MessagingTables.add_to(metadata)

trainer_rows = AggregateMapper(
    Trainer,
    "trainers",
    metadata,
    key="trainer_id",
    columns={"trainer_id": String(36), "name": String(100)},
)
trainers = trainer_rows.table

assignment_rows = AggregateMapper(
    Assignment,
    "assignments",
    metadata,
    Index("ix_assignments_trainer_status", "trainer_id", "status"),
    Index("ix_assignments_status_created", "status", "created_at"),
    key="order_id",
    columns={
        "order_id": String(36),
        "customer_id": String(64),
        "class_name": String(100),
        "status": String(20),
        "trainer_id": String(36),
        "trainer_name": String(100),
        "cancel_reason": String(500),
        "schedule_note": String(500),
        "cancellation_refused_reason": String(500),
    },
)
assignments = assignment_rows.table


class SqlTrainerRepository(TrackingRepository):
    mapper = trainer_rows

    async def add(self, trainer: Trainer) -> None:
        await self._insert(trainer)

    async def find(self, trainer_id: str) -> Trainer | None:
        row = (
            await self.connection.execute(
                select(trainers).where(trainers.c.trainer_id == trainer_id)
            )
        ).first()
        return None if row is None else self._load(row)

    async def get(self, trainer_id: str) -> Trainer:
        trainer = await self.find(trainer_id)
        if trainer is None:
            raise TrainerNotFound(trainer_id)
        return trainer

    async def list(self) -> list[Trainer]:
        query = select(trainers).order_by(trainers.c.name, trainers.c.trainer_id)
        return [trainer_rows.load(row) for row in await self.connection.execute(query)]


class SqlAssignmentRepository(TrackingRepository):
    mapper = assignment_rows

    async def add(self, assignment: Assignment) -> None:
        await self._insert(assignment)

    async def find(self, order_id: str) -> Assignment | None:
        row = (
            await self.connection.execute(
                select(assignments).where(assignments.c.order_id == order_id)
            )
        ).first()
        return None if row is None else self._load(row)

    async def get(self, order_id: str) -> Assignment:
        assignment = await self.find(order_id)
        if assignment is None:
            raise AssignmentNotFound(order_id)
        return assignment

    async def list(
        self, status: AssignmentStatus | None, trainer_id: str | None
    ) -> list[Assignment]:
        query = select(assignments).order_by(
            assignments.c.created_at.desc(), assignments.c.order_id.desc()
        )
        if status is not None:
            query = query.where(assignments.c.status == status.value)
        if trainer_id:
            query = query.where(assignments.c.trainer_id == trainer_id)
        return [assignment_rows.load(row) for row in await self.connection.execute(query)]

    async def load_per_trainer(self) -> dict[str, int]:
        query = (
            select(assignments.c.trainer_id, func.count())
            .where(assignments.c.status.in_([status.value for status in HOLDING_STATUSES]))
            .group_by(assignments.c.trainer_id)
        )
        return {trainer_id: count for trainer_id, count in await self.connection.execute(query)}


class SqlManagerUnitOfWork(SqlUnitOfWork):
    trainers: SqlTrainerRepository
    assignments: SqlAssignmentRepository

    def open_repositories(self, connection: AsyncConnection) -> None:
        self.trainers = SqlTrainerRepository(connection)
        self.assignments = SqlAssignmentRepository(connection)

    def repositories(self) -> Iterable[TrackingRepository]:
        return (self.trainers, self.assignments)
