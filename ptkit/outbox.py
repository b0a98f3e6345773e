"""The outbox relay: publishes committed outbox rows to JetStream, in order, at least
once; ``Nats-Msg-Id = event_id`` lets JetStream drop re-sends (relay restarts, two
replicas racing on one row)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, update
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
        backlog_interval_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.outbox = tables.outbox
        self.jetstream = jetstream
        self.source = source
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.backlog_interval_seconds = backlog_interval_seconds
        self._counted_at = -backlog_interval_seconds
        self._wake = asyncio.Event()
        outbox = self.outbox
        self._pending = (
            select(outbox.c.seq, outbox.c.event_id, outbox.c.subject, outbox.c.payload)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(bindparam("batch"))
        )

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
        """Publish one batch of unpublished rows, oldest first; returns how many.

        The batch goes out pipelined on the one NATS connection (sent in outbox order,
        acknowledged together), and every acknowledged row is marked in one UPDATE. If a
        publish fails, the rows after it may be stored first; views tolerate that order
        (DESIGN.md, messaging rules) and the failed row is published on the next pass.
        """
        async with self.engine.connect() as connection:
            rows = (await connection.execute(self._pending, {"batch": self.batch})).all()
            await connection.rollback()
        if not rows:
            self._report_backlog(0, None)
            return 0
        if not self.jetstream.ready.is_set():
            await self._count_backlog()
            raise ConnectionError("NATS not connected")
        acks = await asyncio.gather(
            *(self.jetstream.publish(row.subject, row.payload, row.event_id) for row in rows),
            return_exceptions=True,
        )
        done = [row.seq for row, ack in zip(rows, acks, strict=True) if ack is True or ack is False]
        if done:
            await self._mark_published(done)
            metrics.OUTBOX_PUBLISHED.labels(self.source).inc(len(done))
        failure = next((ack for ack in acks if isinstance(ack, BaseException)), None)
        if failure is not None:
            await self._count_backlog()
            raise failure
        if len(rows) < self.batch:
            self._report_backlog(0, None)  # rows committed meanwhile: the wake brings them
        else:
            await self._count_backlog()
        return len(done)

    async def _mark_published(self, seqs: list[int]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(self.outbox)
                .where(self.outbox.c.seq.in_(seqs))
                .values(published_at=datetime.now(UTC))
            )

    async def _count_backlog(self) -> None:
        """Count the backlog, at most once per ``backlog_interval_seconds``: only while
        rows wait (a full batch, a failure); an emptied outbox costs no COUNT(*)."""
        now = time.monotonic()
        if now - self._counted_at < self.backlog_interval_seconds:
            return
        self._counted_at = now
        async with self.engine.connect() as connection:
            count, oldest = (
                await connection.execute(
                    select(func.count(), func.min(self.outbox.c.created_at)).where(
                        self.outbox.c.published_at.is_(None)
                    )
                )
            ).one()
            await connection.rollback()
        self._report_backlog(count, oldest)

    def _report_backlog(self, count: int, oldest: datetime | None) -> None:
        metrics.OUTBOX_BACKLOG.labels(self.source).set(count)
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = (datetime.now(UTC) - oldest).total_seconds()
        metrics.OUTBOX_OLDEST_AGE.labels(self.source).set(age)
