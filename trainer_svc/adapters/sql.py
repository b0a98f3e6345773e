"""SQLAlchemy adapter: the schedules table, its repository and trainer_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository, as_utc
from trainer_svc.domain.model import BOOKED, Schedule, ScheduleNotFound, ScheduleStatus, TimeSlot

metadata = MetaData()
messaging = MessagingTables.add_to(metadata)

schedules = Table(
    "schedules",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("trainer_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("class_name", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=True),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Column("duration_minutes", Integer, nullable=False),
    Column("class_result", Text, nullable=False),
    Column("cancel_reason", String(500), nullable=False),
    Column("assignment_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_schedules_trainer_status_start", "trainer_id", "status", "start_time"),
    Index("ix_schedules_created", "created_at", "order_id"),
)

trainer_calendars = Table(
    "trainer_calendars",
    metadata,
    Column("trainer_id", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
)
"""One row per trainer, written by every confirmation: the row lock serializes them."""


def _to_schedule(row: Row) -> Schedule:
    start = as_utc(row.start_time)
    return Schedule(
        order_id=row.order_id,
        trainer_id=row.trainer_id,
        customer_id=row.customer_id,
        class_name=row.class_name,
        status=ScheduleStatus(row.status),
        slot=None if start is None else TimeSlot(start, row.duration_minutes),
        class_result=row.class_result,
        cancel_reason=row.cancel_reason,
        assignment_version=row.assignment_version,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        version=row.version,
    )


def _state(schedule: Schedule) -> dict[str, object]:
    slot = schedule.slot
    return {
        "trainer_id": schedule.trainer_id,
        "customer_id": schedule.customer_id,
        "class_name": schedule.class_name,
        "status": schedule.status.value,
        "start_time": slot.start if slot else None,
        "end_time": slot.end if slot else None,
        "duration_minutes": slot.duration_minutes if slot else 0,
        "class_result": schedule.class_result,
        "cancel_reason": schedule.cancel_reason,
        "assignment_version": schedule.assignment_version,
        "updated_at": schedule.updated_at,
        "version": schedule.version,
    }


class SqlScheduleRepository(TrackingRepository):
    table = schedules
    key = "order_id"
    state = staticmethod(_state)

    async def add(self, schedule: Schedule) -> None:
        await self._insert(schedule, created_at=schedule.created_at)

    async def get(self, order_id: str) -> Schedule:
        schedule = await self.find(order_id)
        if schedule is None:
            raise ScheduleNotFound(order_id)
        return schedule

    async def find(self, order_id: str) -> Schedule | None:
        query = select(schedules).where(schedules.c.order_id == order_id)
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        schedule = _to_schedule(row)
        self._track(schedule)
        return schedule

    async def list(self, trainer_id: str | None, status: ScheduleStatus | None) -> list[Schedule]:
        query = select(schedules).order_by(
            schedules.c.created_at.desc(), schedules.c.order_id.desc()
        )
        if trainer_id is not None:
            query = query.where(schedules.c.trainer_id == trainer_id)
        if status is not None:
            query = query.where(schedules.c.status == status.value)
        return [_to_schedule(row) for row in await self.connection.execute(query)]

    async def booked_overlapping(
        self, trainer_id: str, slot: TimeSlot, excluding_order_id: str
    ) -> list[Schedule]:
        await self._lock_calendar(trainer_id)
        query = select(schedules).where(
            schedules.c.trainer_id == trainer_id,
            schedules.c.status.in_([status.value for status in BOOKED]),
            schedules.c.order_id != excluding_order_id,
            schedules.c.start_time < slot.end,
            schedules.c.end_time > slot.start,
        )
        return [_to_schedule(row) for row in await self.connection.execute(query)]

    async def _lock_calendar(self, trainer_id: str) -> None:
        """Upsert the trainer's calendar row: PostgreSQL holds its row lock until the
        transaction ends (SQLite's ``BEGIN IMMEDIATE`` already serializes writers)."""
        dialect = postgresql if self.connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(trainer_calendars).values(trainer_id=trainer_id, revision=1)
        await self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[trainer_calendars.c.trainer_id],
                set_={"revision": trainer_calendars.c.revision + 1},
            )
        )


class SqlTrainerUnitOfWork(SqlUnitOfWork):
    schedules: SqlScheduleRepository

    def open_repositories(self, connection: AsyncConnection) -> None:
        self.schedules = SqlScheduleRepository(connection)

    def repositories(self) -> Iterable[TrackingRepository]:
        return (self.schedules,)
