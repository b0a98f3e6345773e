"""What every repository contract suite shares: units of work on one store, either the
kit's in-memory fake or a migrated SQLite or PostgreSQL database, so the same tests hold
the fake to what users get. A suite's ``backend`` fixture opens one with
:func:`open_backend` for the ``store_url`` fixture (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.sql import Causation, MessagingTables
from ptkit.testing import FakeUnitOfWork
from tests.helpers import database, outbox_envelopes

OutboxRow = tuple[str, int, str]
"""(event type, aggregate version, causation id) of one outbox row."""


class Backend:
    """Units of work on one store, and what a test needs to see through them."""

    def uow(self, causation: Causation | None = None) -> Any:
        raise NotImplementedError

    async def outbox(self) -> list[OutboxRow]:
        """Every outbox row, oldest first."""
        raise NotImplementedError

    async def another_writer_bumps(self, uow: Any, table: str, key: str) -> None:
        """Another writer commits a change to the row after ``uow`` read it."""
        raise NotImplementedError


class MemoryBackend(Backend):
    def __init__(self, root: FakeUnitOfWork) -> None:
        self.root = root

    def uow(self, causation: Causation | None = None) -> Any:
        return self.root.handling(causation) if causation else self.root.sibling()

    async def outbox(self) -> list[OutboxRow]:
        return [
            (type(e.event).__name__, e.aggregate_version, e.causation_id)
            for e in self.root.store.outbox
        ]

    async def another_writer_bumps(self, uow: Any, table: str, key: str) -> None:
        self.root.store.table(table)[key].version += 1


class SqlBackend(Backend):
    def __init__(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[AsyncEngine], Any],
        metadata: MetaData,
        messaging: MessagingTables,
    ) -> None:
        self.engine = engine
        self.new_uow = new_uow
        self.metadata = metadata
        self.messaging = messaging

    def uow(self, causation: Causation | None = None) -> Any:
        uow = self.new_uow(self.engine)
        return uow.handling(causation) if causation else uow

    async def outbox(self) -> list[OutboxRow]:
        return [
            (e.event_type, e.aggregate_version, e.causation_id)
            for e in await outbox_envelopes(self.engine, self.messaging)
        ]

    async def another_writer_bumps(self, uow: Any, table: str, key: str) -> None:
        rows = self.metadata.tables[table]
        (key_column,) = rows.primary_key.columns
        await uow.connection.execute(
            update(rows).where(key_column == key).values(version=rows.c.version + 1)
        )


@asynccontextmanager
async def open_backend(
    store_url: str,
    fake: Callable[[], FakeUnitOfWork],
    new_uow: Callable[[AsyncEngine], Any],
    metadata: MetaData,
    messaging: MessagingTables,
) -> AsyncIterator[Backend]:
    """The in-memory fake for ``"memory"``, else a migrated database at ``store_url``."""
    if store_url == "memory":
        yield MemoryBackend(fake())
        return
    async with database(store_url, metadata) as engine:
        yield SqlBackend(engine, new_uow, metadata, messaging)
