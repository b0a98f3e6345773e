"""The outbox relay: publishes committed outbox rows to JetStream, in order, at least
once; ``Nats-Msg-Id = event_id`` lets JetStream drop re-sends (relay restarts, two
replicas racing on one row)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit import metrics
from ptkit.messaging import JetStream, raise_if_cancelled
from ptkit.sql import MessagingTables

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: MessagingTables,
        jetstream: JetStream,
        source: str,
        *,
        batch: int = 100,
        poll_seconds: float = 0.5,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.engine = engine
        self.outbox = tables.outbox
        self.jetstream = jetstream
        self.source = source
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit wrote outbox rows: publish now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = self.poll_seconds
        while True:
            raise_if_cancelled()
            # cleared before the rows are read: a commit during the pass sets it again, so
            # its rows are published at once instead of waiting for the next poll
            self._wake.clear()
            try:
                published = await self.publish_pending()
                backoff = self.poll_seconds
            except Exception as error:
                log.warning("outbox relay cannot publish yet", extra={"error": repr(error)})
                published = 0
                backoff = min(backoff * 2, self.max_backoff_seconds)
                await asyncio.sleep(backoff)
                continue
            if published < self.batch:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                except TimeoutError:
                    pass

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows, oldest first; returns how many."""
        async with self.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(
                        self.outbox.c.seq,
                        self.outbox.c.event_id,
                        self.outbox.c.subject,
                        self.outbox.c.payload,
                    )
                    .where(self.outbox.c.published_at.is_(None))
                    .order_by(self.outbox.c.seq)
                    .limit(self.batch)
                )
            ).all()
            await connection.rollback()
        if not rows:
            await self._report_backlog()
            return 0
        if not self.jetstream.ready.is_set():
            await self._report_backlog()
            raise ConnectionError("NATS not connected")
        done: list[int] = []
        try:
            for row in rows:
                await self.jetstream.publish(row.subject, row.payload, row.event_id)
                done.append(row.seq)
        finally:
            if done:
                await self._mark_published(done)
        metrics.OUTBOX_PUBLISHED.labels(self.source).inc(len(done))
        await self._report_backlog()
        return len(done)

    async def _mark_published(self, seqs: list[int]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(self.outbox)
                .where(self.outbox.c.seq.in_(seqs))
                .values(published_at=datetime.now(UTC))
            )

    async def _report_backlog(self) -> None:
        async with self.engine.connect() as connection:
            count, oldest = (
                await connection.execute(
                    select(func.count(), func.min(self.outbox.c.created_at)).where(
                        self.outbox.c.published_at.is_(None)
                    )
                )
            ).one()
            await connection.rollback()
        metrics.OUTBOX_BACKLOG.labels(self.source).set(count)
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = (datetime.now(UTC) - oldest).total_seconds()
        metrics.OUTBOX_OLDEST_AGE.labels(self.source).set(age)
