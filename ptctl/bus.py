"""A short-lived JetStream connection for one ptctl command (dlq, verify,
rebuild-views): it fails fast and quietly instead of retrying like a service does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.js import JetStreamContext


async def _quiet(_: Exception) -> None:
    """nats-py's default error callback logs every failed attempt with a traceback; the
    command reports the failure once."""


@asynccontextmanager
async def connected(
    url: str, timeout: float = 5.0, request_timeout: float = 5.0
) -> AsyncIterator[JetStreamContext]:
    """A connection for one command; an unreachable server is a TimeoutError (OSError)
    or a nats error after ``timeout`` (nats-py would otherwise retry the first connect
    forever)."""
    nc = await asyncio.wait_for(
        nats.connect(url, connect_timeout=2, allow_reconnect=False, error_cb=_quiet), timeout
    )
    try:
        yield nc.jetstream(timeout=request_timeout)
    finally:
        await nc.close()
