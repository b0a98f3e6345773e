"""``make bench``: throughput, latency and memory of the platform, printed as figures.

Starts a platform of its own on free loopback ports in a temporary directory, drives
PlaceOrder through the gateway with concurrent gRPC clients, measures how long an
OrderPlaced takes to reach status_svc's view, reads each process's resident memory,
and stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform, PlatformConfig
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def place_orders(
    gateway: str, token: str, total: int, concurrency: int
) -> tuple[list[float], float]:
    metadata = (("authorization", f"Bearer {token}"),)
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    async with grpc.aio.insecure_channel(gateway) as channel:
        stub = order_grpc.OrderServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                started = time.perf_counter()
                await stub.PlaceOrder(
                    order.PlaceOrderRequest(customer_name="Bench", class_name=f"Class {n}"),
                    metadata=metadata,
                )
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


async def propagation(gateway: str, token: str, samples: int) -> list[float]:
    """Seconds from PlaceOrder's answer until status_svc's view shows the order."""
    metadata = (("authorization", f"Bearer {token}"),)
    delays = []
    async with grpc.aio.insecure_channel(gateway) as channel:
        orders = order_grpc.OrderServiceStub(channel)
        views = status_grpc.StatusServiceStub(channel)
        for n in range(samples):
            placed = await orders.PlaceOrder(
                order.PlaceOrderRequest(customer_name="Bench", class_name=f"Trace {n}"),
                metadata=metadata,
            )
            started = time.perf_counter()
            while True:
                try:
                    await views.GetOrderStatus(
                        status.GetOrderStatusRequest(order_id=placed.order_id), metadata=metadata
                    )
                    break
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    await asyncio.sleep(0.002)
            delays.append(time.perf_counter() - started)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--propagation-samples", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ptbench-") as var_dir:
        config = PlatformConfig.ephemeral(
            Path(var_dir),
            gateway=GatewaySettings(rate_limit=RateLimitSettings.unlimited()),
        )
        with Platform(config) as platform:
            token = platform.token("customer", "bench-customer")
            asyncio.run(place_orders(platform.gateway_address, token, 50, 4))  # warm-up
            latencies, elapsed = asyncio.run(
                place_orders(platform.gateway_address, token, args.orders, args.concurrency)
            )
            delays = asyncio.run(
                propagation(platform.gateway_address, token, args.propagation_samples)
            )
            memory = {
                process.name: rss_mib(process.process.pid)
                for processes in platform.services.values()
                for process in processes
                if process.process is not None
            }

    print(f"PlaceOrder through the gateway: {args.orders} calls, {args.concurrency} clients")
    print(f"  throughput   {args.orders / elapsed:8.1f} orders/s")
    for label, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        print(f"  latency {label}  {percentile(latencies, fraction) * 1000:8.1f} ms")
    print(f"OrderPlaced -> status view, {args.propagation_samples} samples")
    print(f"  median       {statistics.median(delays) * 1000:8.1f} ms")
    print(f"  p95          {percentile(delays, 0.95) * 1000:8.1f} ms")
    print("Resident memory after the run")
    for name, mib in memory.items():
        print(f"  {name:<12} {mib:8.1f} MiB")


if __name__ == "__main__":
    main()
