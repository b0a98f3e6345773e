"""SQLAlchemy adapter: the trainers and assignments tables, their repositories and
manager_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Index, String, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from manager_svc.domain.model import (
    HOLDING_STATUSES,
    Assignment,
    AssignmentNotFound,
    AssignmentStatus,
)
from manager_svc.domain.roster import Trainer, TrainerNotFound
from ptkit.mapping import AggregateMapper, Stored
from ptkit.migrations import service_metadata
from ptkit.paging import PageRequest
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository
from ptkit.sql_paging import keyset_page

metadata = service_metadata(Path(__file__).with_name("migrations"))
messaging = MessagingTables.add_to(metadata)

trainer_rows = AggregateMapper(
    Trainer,
    "trainers",
    metadata,
    UniqueConstraint("registered_by", "request_id", name="uq_trainers_registered_by_request"),
    Index("ix_trainers_name", "name", "trainer_id"),
    key="trainer_id",
    columns={
        "trainer_id": String(36),
        "name": String(100),
        "registered_by": String(64),
        # no request id is NULL, which the unique constraint lets repeat
        "request_id": Stored(
            String(36), nullable=True, write=lambda v: v or None, read=lambda v: v or ""
        ),
    },
)
trainers = trainer_rows.table

assignment_rows = AggregateMapper(
    Assignment,
    "assignments",
    metadata,
    Index("ix_assignments_trainer_status", "trainer_id", "status"),
    Index("ix_assignments_status_created", "status", "created_at"),
    Index("ix_assignments_created", "created_at", "order_id"),
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
        return await self._find(trainer_id)

    async def get(self, trainer_id: str) -> Trainer:
        trainer = await self.find(trainer_id)
        if trainer is None:
            raise TrainerNotFound(trainer_id)
        return trainer

    async def find_by_request(self, registered_by: str, request_id: str) -> Trainer | None:
        query = select(trainers).where(
            trainers.c.registered_by == registered_by, trainers.c.request_id == request_id
        )
        row = (await self.connection.execute(query)).first()
        return None if row is None else self._load(row)

    async def list(self, page: PageRequest | None = None) -> list[Trainer]:
        query = select(trainers)
        if page is None:
            query = query.order_by(trainers.c.name, trainers.c.trainer_id)
        else:
            query = keyset_page(query, trainers.c, page)
        return [trainer_rows.load(row) for row in await self.connection.execute(query)]


class SqlAssignmentRepository(TrackingRepository):
    mapper = assignment_rows

    async def add(self, assignment: Assignment) -> None:
        await self._insert(assignment)

    async def find(self, order_id: str) -> Assignment | None:
        return await self._find(order_id)

    async def get(self, order_id: str) -> Assignment:
        assignment = await self.find(order_id)
        if assignment is None:
            raise AssignmentNotFound(order_id)
        return assignment

    async def list(
        self, status: AssignmentStatus | None, trainer_id: str | None, page: PageRequest
    ) -> list[Assignment]:
        query = select(assignments)
        if status is not None:
            query = query.where(assignments.c.status == status.value)
        if trainer_id:
            query = query.where(assignments.c.trainer_id == trainer_id)
        rows = await self.connection.execute(keyset_page(query, assignments.c, page))
        return [assignment_rows.load(row) for row in rows]

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
