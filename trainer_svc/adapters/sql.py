"""SQLAlchemy adapter: the schedules table, its repository and trainer_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ptkit.mapping import AggregateMapper, Embedded, Stored, as_utc
from ptkit.migrations import service_metadata
from ptkit.paging import PageRequest
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository
from ptkit.sql_paging import keyset_page
from trainer_svc.domain.model import (
    BOOKED,
    ClassResult,
    Schedule,
    ScheduleNotFound,
    ScheduleStatus,
    TimeSlot,
)

metadata = service_metadata(Path(__file__).with_name("migrations"))
messaging = MessagingTables.add_to(metadata)


def _slot_columns(slot: TimeSlot | None) -> dict[str, object]:
    """The end is stored too, for the overlap query; no slot yet is duration 0."""
    if slot is None:
        return {"start_time": None, "end_time": None, "duration_minutes": 0}
    return {
        "start_time": slot.start,
        "end_time": slot.end,
        "duration_minutes": slot.duration_minutes,
    }


def _slot(row: Row) -> TimeSlot | None:
    start = as_utc(row.start_time)
    return None if start is None else TimeSlot(start, row.duration_minutes)


schedule_rows = AggregateMapper(
    Schedule,
    "schedules",
    metadata,
    Index("ix_schedules_trainer_status_start", "trainer_id", "status", "start_time"),
    Index("ix_schedules_created", "created_at", "order_id"),
    Index("ix_schedules_trainer_created", "trainer_id", "created_at", "order_id"),
    key="order_id",
    columns={
        "order_id": String(36),
        "trainer_id": String(64),
        "customer_id": String(64),
        "class_name": String(100),
        "status": String(16),
        "slot": Embedded(
            columns=(
                Column("start_time", DateTime(timezone=True), nullable=True),
                Column("end_time", DateTime(timezone=True), nullable=True),
                Column("duration_minutes", Integer, nullable=False),
            ),
            write=_slot_columns,
            read=_slot,
        ),
        "class_result": Stored(
            Text(),
            nullable=False,
            write=lambda result: result.text if result else "",
            read=lambda text: ClassResult(text) if text else None,
        ),
        "cancel_reason": String(500),
    },
)
schedules = schedule_rows.table

trainer_calendars = Table(
    "trainer_calendars",
    metadata,
    Column("trainer_id", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
)
"""One row per trainer, written by every confirmation: the row lock serializes them."""


class SqlScheduleRepository(TrackingRepository):
    mapper = schedule_rows

    async def add(self, schedule: Schedule) -> None:
        await self._insert(schedule)

    async def get(self, order_id: str) -> Schedule:
        schedule = await self.find(order_id)
        if schedule is None:
            raise ScheduleNotFound(order_id)
        return schedule

    async def find(self, order_id: str) -> Schedule | None:
        return await self._find(order_id)

    async def list(
        self, trainer_id: str | None, status: ScheduleStatus | None, page: PageRequest
    ) -> list[Schedule]:
        query = select(schedules)
        if trainer_id is not None:
            query = query.where(schedules.c.trainer_id == trainer_id)
        if status is not None:
            query = query.where(schedules.c.status == status.value)
        rows = await self.connection.execute(keyset_page(query, schedules.c, page))
        return [schedule_rows.load(row) for row in rows]

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
        return [schedule_rows.load(row) for row in await self.connection.execute(query)]

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
