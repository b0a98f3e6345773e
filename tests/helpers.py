"""Helpers for tests: polling with a deadline, tokens, gRPC metadata."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.migrations import upgrade_schema
from ptkit.sql import MessagingTables, create_engine
from ptplatform.events.v1 import events_pb2

T = TypeVar("T")


def wait_for(
    check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")


async def eventually(
    check: Callable[[], Awaitable[T]],
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Async ``wait_for``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")


def bearer(token: str) -> tuple[tuple[str, str]]:
    """gRPC call metadata carrying a bearer token."""
    return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def database(url: str, metadata: MetaData) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with the service's schema migrated to head, as a service
    start would; disposed afterwards."""
    engine = create_engine(url)
    try:
        await upgrade_schema(engine, metadata)
        yield engine
    finally:
        await engine.dispose()


async def outbox_envelopes(
    engine: AsyncEngine, tables: MessagingTables
) -> list[events_pb2.EventEnvelope]:
    """The events in a service's outbox, oldest first."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(tables.outbox).order_by(tables.outbox.c.seq))).all()
    return [events_pb2.EventEnvelope.FromString(row.payload) for row in rows]
