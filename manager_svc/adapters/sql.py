"""SQLAlchemy adapter: the trainers and assignments tables, their repositories and
manager_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from manager_svc.domain.model import (
    HOLDING_STATUSES,
    Assignment,
    AssignmentNotFound,
    AssignmentStatus,
)
from manager_svc.domain.roster import Trainer, TrainerNotFound
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository, as_utc

metadata = MetaData()
messaging = MessagingTables.add_to(metadata)

trainers = Table(
    "trainers",
    metadata,
    Column("trainer_id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("class_name", String(100), nullable=False),
    Column("preferred_start", DateTime(timezone=True), nullable=True),
    Column("status", String(20), nullable=False),
    Column("trainer_id", String(36), nullable=False),
    Column("trainer_name", String(100), nullable=False),
    Column("cancel_reason", String(500), nullable=False),
    Column("schedule_note", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_assignments_trainer_status", "trainer_id", "status"),
    Index("ix_assignments_status_created", "status", "created_at"),
)


def _to_trainer(row: Row) -> Trainer:
    return Trainer(
        trainer_id=row.trainer_id,
        name=row.name,
        active=row.active,
        created_at=as_utc(row.created_at),
        version=row.version,
    )


def _to_assignment(row: Row) -> Assignment:
    return Assignment(
        order_id=row.order_id,
        customer_id=row.customer_id,
        class_name=row.class_name,
        preferred_start=as_utc(row.preferred_start),
        status=AssignmentStatus(row.status),
        trainer_id=row.trainer_id,
        trainer_name=row.trainer_name,
        cancel_reason=row.cancel_reason,
        schedule_note=row.schedule_note,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        version=row.version,
    )


def _assignment_state(assignment: Assignment) -> dict[str, object]:
    return {
        "customer_id": assignment.customer_id,
        "class_name": assignment.class_name,
        "preferred_start": assignment.preferred_start,
        "status": assignment.status.value,
        "trainer_id": assignment.trainer_id,
        "trainer_name": assignment.trainer_name,
        "cancel_reason": assignment.cancel_reason,
        "schedule_note": assignment.schedule_note,
        "updated_at": assignment.updated_at,
        "version": assignment.version,
    }


def _trainer_state(trainer: Trainer) -> dict[str, object]:
    return {"name": trainer.name, "active": trainer.active, "version": trainer.version}


class SqlTrainerRepository(TrackingRepository):
    table = trainers
    key = "trainer_id"
    state = staticmethod(_trainer_state)

    async def add(self, trainer: Trainer) -> None:
        await self._insert(trainer, created_at=trainer.created_at)

    async def find(self, trainer_id: str) -> Trainer | None:
        row = (
            await self.connection.execute(
                select(trainers).where(trainers.c.trainer_id == trainer_id)
            )
        ).first()
        if row is None:
            return None
        trainer = _to_trainer(row)
        self._track(trainer)
        return trainer

    async def get(self, trainer_id: str) -> Trainer:
        trainer = await self.find(trainer_id)
        if trainer is None:
            raise TrainerNotFound(trainer_id)
        return trainer

    async def list(self) -> list[Trainer]:
        query = select(trainers).order_by(trainers.c.name, trainers.c.trainer_id)
        return [_to_trainer(row) for row in await self.connection.execute(query)]


class SqlAssignmentRepository(TrackingRepository):
    table = assignments
    key = "order_id"
    state = staticmethod(_assignment_state)

    async def add(self, assignment: Assignment) -> None:
        await self._insert(assignment, created_at=assignment.created_at)

    async def find(self, order_id: str) -> Assignment | None:
        row = (
            await self.connection.execute(
                select(assignments).where(assignments.c.order_id == order_id)
            )
        ).first()
        if row is None:
            return None
        assignment = _to_assignment(row)
        self._track(assignment)
        return assignment

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
        return [_to_assignment(row) for row in await self.connection.execute(query)]

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
