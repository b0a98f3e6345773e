"""SQLite on the event loop's thread (ptkit.sqlite): a writer waiting for another
connection's write lock waits without blocking the loop, and gives up after its timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ptkit.sql import create_engine
from ptkit.sqlite import InlineConnection, inline_creator, when_free


async def test_a_writer_waits_for_the_lock_while_the_loop_goes_on(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    holder, waiter = create_engine(f"sqlite:///{database}"), create_engine(f"sqlite:///{database}")
    try:
        async with holder.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        async with holder.begin() as held:
            await held.execute(text("INSERT INTO t VALUES (1)"))

            async def write() -> None:
                async with waiter.begin() as connection:
                    await connection.execute(text("INSERT INTO t VALUES (2)"))

            writing = asyncio.create_task(write())
            before = ticks
            await asyncio.sleep(0.2)
            assert not writing.done()  # the lock is held
            assert ticks - before >= 10  # and the loop ran other work meanwhile
        await asyncio.wait_for(writing, 5)
        ticker.cancel()
        async with waiter.connect() as connection:
            rows = (await connection.execute(text("SELECT n FROM t ORDER BY n"))).all()
        assert [n for (n,) in rows] == [1, 2]
    finally:
        await holder.dispose()
        await waiter.dispose()


async def test_a_lock_held_past_the_busy_timeout_fails_the_statement(tmp_path: Path) -> None:
    database = str(tmp_path / "locked.db")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE t (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    waiter: InlineConnection = await inline_creator(database, busy_timeout=0.2)()
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await waiter.cursor().execute("BEGIN IMMEDIATE")
        assert 0.2 <= time.monotonic() - started < 2
    finally:
        holder.rollback()
        holder.close()
        await waiter.close()


async def test_an_error_other_than_busy_is_not_retried() -> None:
    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        raise sqlite3.OperationalError("no such table: t")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await when_free(broken, busy_timeout=5)
    assert calls == 1
