"""SQLite on the event loop's own thread: aiosqlite's interface over a plain ``sqlite3``
connection, handed to SQLAlchemy's aiosqlite dialect through ``async_creator``.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker thread and
wakes the event loop for each answer: four thread hops per statement, which profiles
showed as most of a service's CPU. A statement on a local SQLite file in WAL mode takes
microseconds, so running it inline is cheaper than the hop.

SQLite's own busy handler would sleep on the loop's thread while another connection holds
the write lock (a view rebuild, a tool). It is off (``timeout=0``): a statement refused
with ``SQLITE_BUSY`` is retried after an ``asyncio.sleep``, so the loop serves everything
else meanwhile, until ``busy_timeout`` seconds have passed. SQLite refuses a busy
statement before it changes anything, so the retry is safe.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_FIRST_WAIT_SECONDS = 0.001
_LONGEST_WAIT_SECONDS = 0.05


async def when_free(attempt: Callable[[], T], busy_timeout: float) -> T:
    """``attempt()``, retried after a growing sleep while the database is busy."""
    deadline = time.monotonic() + busy_timeout
    wait = _FIRST_WAIT_SECONDS
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as error:
            busy = getattr(error, "sqlite_errorcode", None) in _BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(wait)
        wait = min(wait * 2, _LONGEST_WAIT_SECONDS)


class InlineCursor:
    """aiosqlite's ``Cursor``, answered at once."""

    def __init__(self, cursor: sqlite3.Cursor, busy_timeout: float) -> None:
        self._cursor = cursor
        self._busy_timeout = busy_timeout

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._rows()

    async def _rows(self) -> AsyncIterator[Any]:
        for row in self._cursor:
            yield row

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        values = () if parameters is None else parameters
        await when_free(lambda: self._cursor.execute(sql, values), self._busy_timeout)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(parameters)
        await when_free(lambda: self._cursor.executemany(sql, rows), self._busy_timeout)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """aiosqlite's ``Connection``: ``_conn`` and ``_connection`` are what SQLAlchemy's
    adapter reads (the second is None once closed)."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._busy_timeout = busy_timeout

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._busy_timeout)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        await when_free(self._conn.commit, self._busy_timeout)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """SQLAlchemy's forced close (terminate)."""
        self._connection = None
        self._conn.close()


def inline_creator(database: str, busy_timeout: float) -> Any:
    """The ``async_creator`` of an engine on ``database``: connections in autocommit mode
    (``isolation_level=None``), so the engine's ``BEGIN IMMEDIATE`` opens transactions."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(
            database, timeout=0, isolation_level=None, check_same_thread=False
        )
        return InlineConnection(connection, busy_timeout)

    return connect
