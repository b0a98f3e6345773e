"""``python -m ptctl.bench.load``: the bench's load generator, a process of its own.

It calls OrderService.PlaceOrder through a gateway as a customer's client does: one
grpc.aio channel, the bearer token (from ``PT_BENCH_TOKEN``, not the command line) on
every call, a fresh ``request_id`` (the idempotency key) per order.

``closed``: ``--concurrency`` callers, each placing its next order as soon as the last
one is answered, for ``--warmup`` seconds (not measured) and ``--duration`` seconds;
prints one JSON object with the throughput and the latency percentiles.

``open``: orders sent on a fixed schedule of ``--rate`` per second for ``--duration``
seconds, whatever the answers; prints a JSON line ``{"order_id", "answered"}`` as each
order is answered (``answered``: ``time.monotonic()``, the same clock in every process
on Linux) and a last line ``{"summary": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc

TOKEN_ENV = "PT_BENCH_TOKEN"


def percentile(samples: list[float], fraction: float) -> float:
    """The sample at ``fraction`` of the sorted samples (nearest rank); 0 without any."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Orders:
    """PlaceOrder calls on one channel, each with a fresh request_id."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self.stub = order_grpc.OrderServiceStub(channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        start = Timestamp()
        start.FromDatetime(datetime.now(UTC) + timedelta(days=1))
        self.preferred_start = start
        self.placed = 0
        self.errors: dict[str, int] = {}
        self.last_order_id = ""

    async def place(self, number: int) -> str | None:
        """The new order's id; None (counted by status code) if the call failed."""
        request = order.PlaceOrderRequest(
            customer_name="Bench Customer",
            class_name=f"Bench class {number}",
            preferred_start=self.preferred_start,
            request_id=str(uuid.uuid4()),
        )
        try:
            placed = await self.stub.PlaceOrder(request, metadata=self.metadata, timeout=30)
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            self.errors[code] = self.errors.get(code, 0) + 1
            return None
        self.placed += 1
        self.last_order_id = placed.order_id
        return placed.order_id


@dataclass
class ClosedResult:
    concurrency: int
    requests: int
    elapsed_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    placed_total: int
    """Orders placed, warm-up included (what the platform's CPU was spent on)."""
    last_order_id: str
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0


async def closed_loop(
    target: str, token: str, concurrency: int, duration: float, warmup: float
) -> ClosedResult:
    async with grpc.aio.insecure_channel(target) as channel:
        orders = Orders(channel, token)
        latencies: list[float] = []
        numbers = iter(range(1 << 62))

        async def caller(until: float, record: bool) -> None:
            while time.monotonic() < until:
                started = time.monotonic()
                if await orders.place(next(numbers)) is not None and record:
                    latencies.append(time.monotonic() - started)

        await asyncio.gather(
            *(caller(time.monotonic() + warmup, False) for _ in range(concurrency))
        )
        started = time.monotonic()
        until = started + duration
        await asyncio.gather(*(caller(until, True) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return ClosedResult(
        concurrency=concurrency,
        requests=len(latencies),
        elapsed_s=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        placed_total=orders.placed,
        last_order_id=orders.last_order_id,
        errors=orders.errors,
        cpu_s=own_cpu_seconds(),
    )


async def open_loop(target: str, token: str, rate: float, duration: float) -> dict[str, object]:
    async with grpc.aio.insecure_channel(target) as channel:
        orders = Orders(channel, token)
        await orders.place(-1)  # the channel is connected before the schedule starts
        total = int(rate * duration)
        latencies: list[float] = []
        behind = 0.0

        async def send(number: int) -> None:
            started = time.monotonic()
            order_id = await orders.place(number)
            answered = time.monotonic()
            if order_id is not None:
                latencies.append(answered - started)
                line = json.dumps({"order_id": order_id, "answered": answered})
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

        calls = []
        start = time.monotonic() + 0.05
        for number in range(total):
            due = start + number / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            behind = max(behind, time.monotonic() - due)
            calls.append(asyncio.create_task(send(number)))
        await asyncio.gather(*calls)
    summary = {
        "rate": rate,
        "offered": total,
        "placed": len(latencies),
        "errors": orders.errors,
        "place_p50_ms": percentile(latencies, 0.50) * 1000,
        "place_p99_ms": percentile(latencies, 0.99) * 1000,
        "schedule_behind_max_ms": behind * 1000,
        "cpu_s": own_cpu_seconds(),
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["closed", "open"])
    parser.add_argument("--target", required=True, help="host:port of the gateway")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    token = os.environ[TOKEN_ENV]
    if args.mode == "closed":
        result = asyncio.run(
            closed_loop(args.target, token, args.concurrency, args.duration, args.warmup)
        )
        print(json.dumps(asdict(result)))
    else:
        summary = asyncio.run(open_loop(args.target, token, args.rate, args.duration))
        print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
