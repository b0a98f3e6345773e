"""Pruning of the outbox and processed-events tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from order_svc.adapters import sql
from ptkit.retention import Retention, RetentionSettings
from tests.helpers import database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def outbox_row(event_id: str, created: datetime, published: datetime | None) -> dict[str, object]:
    return {
        "event_id": event_id,
        "event_type": "OrderPlaced",
        "subject": "pt.order.OrderPlaced",
        "payload": b"",
        "created_at": created,
        "published_at": published,
    }


async def test_only_old_published_rows_and_expired_marks_are_pruned(database_url: str) -> None:
    outbox, processed = sql.messaging.outbox, sql.messaging.processed_events
    async with database(database_url, sql.metadata) as engine:
        async with engine.begin() as connection:
            await connection.execute(
                insert(outbox),
                [
                    outbox_row(
                        "published-long-ago", NOW - timedelta(days=3), NOW - timedelta(days=3)
                    ),
                    outbox_row(
                        "published-just-now", NOW - timedelta(hours=1), NOW - timedelta(hours=1)
                    ),
                    outbox_row("never-published", NOW - timedelta(days=90), None),
                ],
            )
            await connection.execute(
                insert(processed),
                [
                    {
                        "consumer": "order_svc",
                        "event_id": "expired",
                        "handled_at": NOW - timedelta(days=31),
                    },
                    {
                        "consumer": "order_svc",
                        "event_id": "recent",
                        "handled_at": NOW - timedelta(days=29),
                    },
                ],
            )
        retention = Retention(
            engine, sql.messaging, RetentionSettings(outbox_hours=24, processed_days=30)
        )

        assert await retention.prune(NOW) == (1, 1)

        async with engine.connect() as connection:
            kept_outbox = set((await connection.execute(select(outbox.c.event_id))).scalars())
            kept_marks = set((await connection.execute(select(processed.c.event_id))).scalars())
        assert kept_outbox == {"published-just-now", "never-published"}
        assert kept_marks == {"recent"}
        assert await retention.prune(NOW) == (0, 0)
