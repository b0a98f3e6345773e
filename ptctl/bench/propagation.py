"""How long an order takes from PlaceOrder's answer to status_svc's view, open loop.

The load process sends orders on a fixed schedule and prints each order id with the
moment its answer arrived. This side reads status_svc's own view table directly and
read-only (``order_status_views``: the SQLite file under the platform's var directory,
or its PostgreSQL database), every ~2 ms, one query for all orders not seen yet. Asking
status_svc over gRPC instead would add the gateway and the service's own request work to
the very process being measured, and at 500 orders/s the polling alone would be a load of
its own; a read of the table costs status_svc nothing but the shared database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ptctl.bench.load import percentile

POLL_INTERVAL_S = 0.002
DRAIN_TIMEOUT_S = 20.0
"""After the load ends, how long every order has to show up before it counts as missing."""
BOUND_FACTOR = 2.0
BOUND_FLOOR_MS = 20.0
QUERY_CHUNK = 500


class ViewProbe(Protocol):
    async def present(self, order_ids: list[str]) -> set[str]: ...

    async def close(self) -> None: ...


VIEW_QUERY = (
    "SELECT order_id FROM order_status_views"
    " WHERE order_status IS NOT NULL AND order_id IN ({marks})"
)


class SqliteProbe:
    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    async def present(self, order_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(order_ids), QUERY_CHUNK):
            chunk = order_ids[start : start + QUERY_CHUNK]
            query = VIEW_QUERY.format(marks=",".join("?" * len(chunk)))
            found.update(row[0] for row in self.connection.execute(query, chunk))
        return found

    async def close(self) -> None:
        self.connection.close()


class PostgresProbe:
    def __init__(self, connection: object) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, url: str) -> PostgresProbe:
        import asyncpg

        connection = await asyncpg.connect(
            url.replace("+asyncpg", ""), server_settings={"default_transaction_read_only": "on"}
        )
        return cls(connection)

    async def present(self, order_ids: list[str]) -> set[str]:
        rows = await self.connection.fetch(  # type: ignore[attr-defined]
            "SELECT order_id FROM order_status_views"
            " WHERE order_status IS NOT NULL AND order_id = ANY($1::text[])",
            order_ids,
        )
        return {row["order_id"] for row in rows}

    async def close(self) -> None:
        await self.connection.close()  # type: ignore[attr-defined]


async def open_probe(database_url: str) -> ViewProbe:
    """A read-only view probe of status_svc's database (``sqlite:///...`` or PostgreSQL)."""
    if database_url.startswith("sqlite"):
        return SqliteProbe(database_url.split(":///", 1)[1])
    return await PostgresProbe.connect(database_url)


async def wait_seen(probe: ViewProbe, order_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe.present([order_id]):
            return True
        await asyncio.sleep(0.01)
    return False


@dataclass
class Propagation:
    rate: float
    offered: int
    placed: int
    achieved_rate: float
    """Orders answered per second, first answer to last: below ``rate``, the platform
    could not take the offered load."""
    seen: int
    missing: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    first_fifth_p50_ms: float
    last_fifth_p50_ms: float
    drain_s: float
    """From the last answer until the last order showed up."""
    bounded: bool
    """The last fifth's median lag within BOUND_FACTOR of the first fifth's (or under
    BOUND_FLOOR_MS), and every order seen within DRAIN_TIMEOUT_S after the load."""
    kept_up: bool
    """Every order answered without error, at no less than 90 % of the offered rate (if
    not, PlaceOrder itself pushed back and the lag figures hold for a lower rate)."""
    load: dict[str, object] = field(default_factory=dict)


def summarize(rate: float, delays: list[tuple[float, float]], missing: int, load: dict) -> dict:
    """``delays``: (answered, seconds to the view) per order seen."""
    ordered = [delay for _, delay in sorted(delays)]
    fifth = max(1, len(ordered) // 5)
    first, last = percentile(ordered[:fifth], 0.5), percentile(ordered[-fifth:], 0.5)
    last_answer = max((answered for answered, _ in delays), default=0.0)
    first_answer = min((answered for answered, _ in delays), default=0.0)
    span = last_answer - first_answer
    achieved = (len(delays) - 1) / span if span > 0 else 0.0
    last_seen = max((answered + delay for answered, delay in delays), default=0.0)
    limit = max(first * BOUND_FACTOR, BOUND_FLOOR_MS / 1000)
    result = Propagation(
        rate=rate,
        offered=int(load.get("offered", 0)),
        placed=int(load.get("placed", 0)),
        achieved_rate=achieved,
        seen=len(ordered),
        missing=missing,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        first_fifth_p50_ms=first * 1000,
        last_fifth_p50_ms=last * 1000,
        drain_s=max(0.0, last_seen - last_answer),
        bounded=missing == 0 and bool(ordered) and last <= limit,
        kept_up=not load.get("errors") and achieved >= 0.9 * rate,
        load=load,
    )
    return asdict(result)


async def measure(argv: list[str], env: dict[str, str], probe: ViewProbe, rate: float) -> dict:
    """Run the open-loop load process ``argv`` and time each of its orders to the view."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    pending: dict[str, float] = {}
    delays: list[tuple[float, float]] = []
    load: dict[str, object] = {}

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            record = json.loads(line)
            if "summary" in record:
                load.update(record["summary"])
            else:
                pending[record["order_id"]] = record["answered"]

    reader = asyncio.create_task(read())
    try:
        ended: float | None = None
        while True:
            if ended is None and reader.done():
                reader.result()
                ended = time.monotonic()
            if pending:
                found = await probe.present(list(pending))
                now = time.monotonic()
                for order_id in found:
                    answered = pending.pop(order_id)
                    delays.append((answered, max(0.0, now - answered)))
            if ended is not None and (not pending or time.monotonic() - ended > DRAIN_TIMEOUT_S):
                break
            await asyncio.sleep(POLL_INTERVAL_S)
        if await process.wait() != 0:
            raise RuntimeError(f"the load process failed (rc {process.returncode})")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return summarize(rate, delays, len(pending), load)
