"""Keyset pages in SQL (SQLite and PostgreSQL) read exactly what the in-memory pages read:
every row once, in the keyset's order, nulls last, whatever the directions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select

from ptkit.paging import Keyset, PageTokens, SortKey, page_in_memory
from ptkit.sql import create_engine
from ptkit.sql_paging import keyset_page

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
metadata = MetaData()
rows = Table(
    "rows",
    metadata,
    Column("key", String(16), primary_key=True),
    Column("owner", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class Row:
    key: str
    owner: str
    at: datetime | None


STORED = [
    Row(
        f"r-{n:03d}",
        "alice" if n % 4 else "bob",
        None if n % 7 == 0 else T0 + timedelta(seconds=n // 5, microseconds=n % 2),
    )
    for n in range(61)
]
KEYSETS = [
    Keyset("rows", SortKey("at", datetime, descending=True, nullable=True), SortKey("key")),
    Keyset("rows", SortKey("at", datetime, nullable=True), SortKey("key", descending=True)),
    Keyset("rows", SortKey("key")),
]


@pytest.mark.parametrize("keyset", KEYSETS, ids=["newest-first", "oldest-first", "by-key"])
async def test_sql_pages_read_what_memory_pages_read(database_url: str, keyset: Keyset) -> None:
    engine = create_engine(database_url)
    tokens = PageTokens.development()
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(rows), [vars(row) for row in STORED])
        for owner in ("alice", None):
            expected = page_in_memory(
                [r for r in STORED if owner in (None, r.owner)],
                tokens.request(keyset, 100, "", owner=owner),
            )
            seen: list[Row] = []
            token = ""
            while True:
                request = tokens.request(keyset, 4, token, owner=owner)
                query = select(rows)
                if owner:
                    query = query.where(rows.c.owner == owner)
                async with engine.connect() as connection:
                    found = [
                        Row(r.key, r.owner, r.at and r.at.replace(tzinfo=UTC))
                        for r in await connection.execute(keyset_page(query, rows.c, request))
                    ]
                page = tokens.page(request, found)
                seen += page.items
                if not (token := page.next_page_token):
                    break
            assert seen == expected
    finally:
        await engine.dispose()
