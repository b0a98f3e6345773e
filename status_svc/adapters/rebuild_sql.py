"""SQLAlchemy adapter of the view rebuild: fresh read-model tables next to the live
ones, and the swap transaction that holds the live writer off while it catches up and
puts them in place.

- PostgreSQL: the fresh tables live in schema ``status_rebuild`` (SQLAlchemy's
  ``schema_translate_map`` sends the unchanged repositories there); the swap takes
  ``LOCK TABLE ... IN EXCLUSIVE MODE`` on the live tables (readers keep reading), then
  moves the live tables to schema ``status_previous`` (kept until the next rebuild) and
  the fresh ones into the live schema: a rename, whatever the size.
- SQLite (one process, development): the fresh tables are a database file of their own
  beside the live one; the swap attaches it, holds SQLite's write lock
  (``BEGIN IMMEDIATE``, which every status_svc transaction takes: the service pauses
  for the swap), copies the fresh rows over the live ones and deletes the file. The
  previous rows are not kept.

In both, notifications keep the sequence the live table gave them (what a resuming
watcher holds); ones the live table lacked are numbered after its newest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import (
    Connection,
    MetaData,
    Table,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ptkit.sql import create_engine
from status_svc.adapters import sql
from status_svc.application.rebuild import RebuiltViews

READ_MODEL: tuple[Table, ...] = (
    sql.messaging.processed_events,
    sql.order_status_views,
    sql.notifications,
)
"""The tables a rebuild replaces (the processed marks first: every live writer takes
that table first, so locking it first holds writers off without a deadlock)."""

REBUILD_SCHEMA = "status_rebuild"
PREVIOUS_SCHEMA = "status_previous"
ATTACHED = "rebuild"


def _in_schema(table: Table, schema: str) -> Table:
    return table.to_metadata(MetaData(), schema=schema)


class Swap:
    """The open swap transaction on ``connection`` (fresh tables: schema None, as the
    repositories name them; live tables: ``live_schema``)."""

    def __init__(self, connection: AsyncConnection, live_schema: str) -> None:
        self.connection = connection
        self.live = {table.name: _in_schema(table, live_schema) for table in READ_MODEL}

    def new_uow(self) -> sql.SqlStatusUnitOfWork:
        """status_svc's unit of work as a savepoint of the open swap transaction."""
        return sql.SqlStatusUnitOfWork(
            self.connection.engine, sql.messaging, None, within=self.connection
        )

    async def missing(self, consumer: str) -> list[str]:
        live, fresh = self.live["processed_events"].c, sql.messaging.processed_events.c
        query = (
            select(live.event_id)
            .where(live.consumer == consumer)
            .except_(select(fresh.event_id).where(fresh.consumer == consumer))
        )
        return list((await self.connection.execute(query)).scalars())

    async def _renumber_notifications(self) -> None:
        """Give every fresh notification the sequence the live table gave it, and the
        ones it lacked sequences after the live newest."""
        live, fresh = self.live["notifications"], sql.notifications
        known = dict(
            (await self.connection.execute(select(live.c.notification_id, live.c.seq))).all()
        )
        rows = [
            dict(row._mapping)
            for row in await self.connection.execute(select(fresh).order_by(fresh.c.seq))
        ]
        following = max(known.values(), default=0)
        for row in rows:
            if row["notification_id"] in known:
                row["seq"] = known[row["notification_id"]]
            else:
                following += 1
                row["seq"] = following
        await self.connection.execute(delete(fresh))
        if rows:
            await self.connection.execute(insert(fresh), rows)

    async def counted(self) -> RebuiltViews:
        count = func.count()
        views = await self.connection.scalar(select(count).select_from(sql.order_status_views))
        notes = await self.connection.scalar(select(count).select_from(sql.notifications))
        return RebuiltViews(views=views or 0, notifications=notes or 0)


class SqliteSwap(Swap):
    async def swap(self) -> RebuiltViews:
        await self._renumber_notifications()
        rebuilt = await self.counted()
        for fresh in READ_MODEL:
            live = self.live[fresh.name]
            await self.connection.execute(delete(live))
            columns = [column.name for column in fresh.columns]
            await self.connection.execute(insert(live).from_select(columns, select(fresh)))
        return rebuilt


class PostgresSwap(Swap):
    def __init__(self, connection: AsyncConnection, live_schema: str) -> None:
        super().__init__(connection, live_schema)
        self.live_schema = live_schema

    async def lock_live_writer(self) -> None:
        names = ", ".join(f'"{self.live_schema}"."{table.name}"' for table in READ_MODEL)
        await self.connection.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))

    async def swap(self) -> RebuiltViews:
        await self._renumber_notifications()
        rebuilt = await self.counted()
        run = self.connection.exec_driver_sql
        await run(f'DROP SCHEMA IF EXISTS "{PREVIOUS_SCHEMA}" CASCADE')
        await run(f'CREATE SCHEMA "{PREVIOUS_SCHEMA}"')
        for table in READ_MODEL:
            await run(
                f'ALTER TABLE "{self.live_schema}"."{table.name}" SET SCHEMA "{PREVIOUS_SCHEMA}"'
            )
            await run(
                f'ALTER TABLE "{REBUILD_SCHEMA}"."{table.name}" SET SCHEMA "{self.live_schema}"'
            )
        live = f'"{self.live_schema}".notifications'
        await run(
            f"SELECT setval(pg_get_serial_sequence('{live}', 'seq'), "
            f"(SELECT COALESCE(MAX(seq), 0) + 1 FROM {live}), false)"
        )
        await run(f'DROP SCHEMA "{REBUILD_SCHEMA}"')
        return rebuilt


def _create_fresh_tables(connection: Connection) -> None:
    sql.metadata.create_all(connection, tables=list(READ_MODEL))


class PostgresRebuildStore:
    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.fresh = self.engine.execution_options(schema_translate_map={None: REBUILD_SCHEMA})

    async def prepare(self) -> None:
        async with self.engine.begin() as connection:
            await connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{REBUILD_SCHEMA}" CASCADE')
            await connection.exec_driver_sql(f'CREATE SCHEMA "{REBUILD_SCHEMA}"')
        async with self.fresh.begin() as connection:
            await connection.run_sync(_create_fresh_tables)

    def new_uow(self) -> sql.SqlStatusUnitOfWork:
        return sql.SqlStatusUnitOfWork(self.fresh, sql.messaging, None)

    @asynccontextmanager
    async def swapping(self) -> AsyncIterator[PostgresSwap]:
        async with self.fresh.connect() as connection:
            async with connection.begin():
                live_schema = await connection.scalar(text("SELECT current_schema()"))
                swap = PostgresSwap(connection, str(live_schema))
                await swap.lock_live_writer()
                yield swap

    async def close(self) -> None:
        await self.engine.dispose()


class SqliteRebuildStore:
    def __init__(self, database_url: str) -> None:
        live = make_url(database_url)
        if not live.database or live.database == ":memory:":
            raise ValueError("a view rebuild needs a SQLite database file")
        if not Path(live.database).is_file():
            raise FileNotFoundError(f"no status_svc database at {live.database}")
        self.live_url = database_url
        self.path = Path(live.database).with_suffix(".rebuild.db")
        self.fresh: AsyncEngine | None = None

    def _remove_file(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    async def prepare(self) -> None:
        self._remove_file()
        self.fresh = create_engine(f"sqlite:///{self.path}")
        async with self.fresh.begin() as connection:
            await connection.run_sync(_create_fresh_tables)

    def new_uow(self) -> sql.SqlStatusUnitOfWork:
        assert self.fresh is not None, "prepare() first"
        return sql.SqlStatusUnitOfWork(self.fresh, sql.messaging, None)

    @asynccontextmanager
    async def swapping(self) -> AsyncIterator[SqliteSwap]:
        if self.fresh is not None:
            await self.fresh.dispose()
        engine = create_engine(self.live_url)
        path = str(self.path)

        @event.listens_for(engine.sync_engine, "connect")
        def _attach(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute(f"ATTACH DATABASE ? AS {ATTACHED}", (path,))
            cursor.close()

        try:
            async with engine.connect() as connection:
                await connection.execution_options(schema_translate_map={None: ATTACHED})
                async with connection.begin():  # BEGIN IMMEDIATE: the write lock
                    yield SqliteSwap(connection, "main")
        finally:
            await engine.dispose()
        self._remove_file()

    async def close(self) -> None:
        if self.fresh is not None:
            await self.fresh.dispose()


def rebuild_store(database_url: str) -> PostgresRebuildStore | SqliteRebuildStore:
    """The rebuild store of status_svc's database at ``database_url``."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresRebuildStore(database_url)
    return SqliteRebuildStore(database_url)
