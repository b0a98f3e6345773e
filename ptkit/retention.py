"""Keeps the outbox and processed-events tables from growing without end.

A published outbox row is only history once JetStream acknowledged it; it is kept for
``outbox_hours`` for diagnosis, then deleted. A processed-event mark guards against a
second copy of an event, which can only come while the stream still holds the event:
marks older than the stream's ``max_age`` are deleted. Unpublished rows are never
touched, however old.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.sql import MessagingTables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionSettings:
    outbox_hours: float = 24.0
    processed_days: float = 30.0
    interval_seconds: float = 600.0


class Retention:
    def __init__(
        self, engine: AsyncEngine, tables: MessagingTables, settings: RetentionSettings
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.settings = settings

    async def prune(self, now: datetime | None = None) -> tuple[int, int]:
        """Delete what is old enough; returns (outbox rows, processed marks) deleted."""
        now = now or datetime.now(UTC)
        outbox, processed = self.tables.outbox, self.tables.processed_events
        pruned_rows = 0
        async with self.engine.begin() as connection:
            if outbox is not None:
                pruned_outbox = await connection.execute(
                    delete(outbox).where(
                        outbox.c.published_at.is_not(None),
                        outbox.c.published_at < now - timedelta(hours=self.settings.outbox_hours),
                    )
                )
                pruned_rows = pruned_outbox.rowcount
            pruned_marks = await connection.execute(
                delete(processed).where(
                    processed.c.handled_at < now - timedelta(days=self.settings.processed_days)
                )
            )
        return pruned_rows, pruned_marks.rowcount

    async def run(self) -> None:
        while True:
            try:
                outbox_rows, marks = await self.prune()
                if outbox_rows or marks:
                    log.info("pruned", extra={"outbox_rows": outbox_rows, "processed_marks": marks})
            except Exception as error:  # a database hiccup: try again next round
                log.warning("pruning failed", extra={"error": repr(error)})
            await asyncio.sleep(self.settings.interval_seconds)
