"""``make bench-breaker``: measure the manager_svc -> trainer_svc circuit breaker.

Starts the whole platform on free loopback ports in a temporary directory, with the
circuit-breaker defaults of ptkit/envoy.py and Envoy's fault filter placed behind the
breaker (off until switched on at run time), then measures and prints:

1. a healthy CancelSchedule through the internal listener;
2. a burst of concurrent CancelSchedule calls while trainer_svc is slow: how many the
   breaker sheds, how fast a shed call fails, how long an admitted one takes;
3. a call while Envoy has ejected the slow trainer_svc (outlier detection);
4. recovery after the slowness ends: until a call succeeds again, and until every order
   cancelled meanwhile has its assignment and schedule CANCELLED;
5. the same with trainer_svc stopped and restarted.

Stops the platform before it exits.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc

from ptctl.envoy import GatewaySettings, InternalRouteSettings
from ptctl.launcher import Platform, PlatformConfig
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.fault_kit import (
    CallOutcome,
    Desk,
    cancel_schedule_burst,
    cancels_retried,
    envoy_counters,
    internal_address,
    manager_svc_metadata,
    set_fault_delay_percent,
    shed_by_breaker,
)
from tests.helpers import wait_for

Row = tuple[str, str]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"p50 {ms(statistics.median(values))}, max {ms(max(values))} (n={len(values)})"


class Caller:
    """Single CancelSchedule calls on the internal listener, as manager_svc makes them."""

    def __init__(self, platform: Platform, channel: grpc.Channel) -> None:
        self.stub = trainer_grpc.TrainerServiceStub(channel)
        self.metadata = manager_svc_metadata(platform)

    def call(self, timeout: float = 5.0) -> CallOutcome:
        started = time.monotonic()
        try:
            self.stub.CancelSchedule(
                trainer.CancelScheduleRequest(order_id=str(uuid.uuid4()), reason="bench"),
                metadata=self.metadata,
                timeout=timeout,
            )
        except grpc.RpcError as error:
            return CallOutcome(error.code(), time.monotonic() - started, error.details() or "")
        return CallOutcome(grpc.StatusCode.OK, time.monotonic() - started, "")

    def until_ok(self, timeout: float = 120.0) -> float:
        """Seconds until a call succeeds."""
        started = time.monotonic()
        wait_for(
            lambda: self.call(timeout=2.0).code == grpc.StatusCode.OK,
            timeout=timeout,
            interval=0.1,
            what="a successful CancelSchedule",
        )
        return time.monotonic() - started


def booked(desk: Desk, count: int) -> list[str]:
    """``count`` orders with a trainer assigned and a schedule REQUESTED."""
    coach = desk.register_trainer()
    orders = [desk.place_order(f"Bench class {n}") for n in range(count)]
    for order_id in orders:
        desk.assign(order_id, coach)
    return orders


def cancel_all(platform: Platform, desk: Desk, orders: list[str]) -> float:
    """Cancel every order; return the slowest CancelOrder, once manager_svc has failed
    each schedule cancel at least once."""
    retried_before = cancels_retried(platform)
    slowest = 0.0
    for order_id in orders:
        started = time.monotonic()
        desk.cancel_order(order_id)
        slowest = max(slowest, time.monotonic() - started)
    wait_for(
        lambda: cancels_retried(platform) >= retried_before + len(orders),
        timeout=60,
        what="manager_svc retrying every schedule cancel",
    )
    return slowest


def until_all_cancelled(desk: Desk, orders: list[str]) -> float:
    started = time.monotonic()
    for order_id in orders:
        wait_for(lambda o=order_id: desk.all_cancelled(o), timeout=180, interval=0.1)
    return time.monotonic() - started


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


@contextmanager
def bench_platform(var_dir: Path, delay_s: float) -> Iterator[Platform]:
    slow = InternalRouteSettings(fault_delay_s=delay_s, fault_delay_percent=100)
    platform = Platform(PlatformConfig.ephemeral(var_dir, gateway=GatewaySettings(internal=slow)))
    platform.start()
    try:
        set_fault_delay_percent(platform, 0)
        yield platform
    finally:
        platform.stop()


def run(var_dir: Path, orders_count: int, burst_size: int, delay_s: float) -> list[Row]:
    rows: list[Row] = []
    with (
        bench_platform(var_dir, delay_s) as platform,
        grpc.insecure_channel(platform.gateway_address) as gateway,
        grpc.insecure_channel(internal_address(platform)) as internal,
    ):
        settings = platform.config.gateway.internal
        desk, caller = Desk(platform, gateway), Caller(platform, internal)
        orders = booked(desk, orders_count)
        healthy = [caller.call().seconds for _ in range(20)]
        rows.append(("healthy CancelSchedule via the internal listener", spread(healthy)))

        set_fault_delay_percent(platform, 100)
        before = envoy_counters(platform)
        burst = cancel_schedule_burst(platform, burst_size)
        after = envoy_counters(platform)
        shed = [c.seconds for c in burst if c.shed]
        admitted = [c for c in burst if not c.shed]
        rows += [
            (
                f"burst of {burst_size} calls, trainer_svc {delay_s:g} s slow",
                f"{len(shed)} shed by the breaker, {len(admitted)} admitted",
            ),
            ("  shed call fails in", spread(shed)),
            ("  admitted call answers in", spread([c.seconds for c in admitted])),
            (
                "  admitted calls' codes",
                ", ".join(sorted({c.code.name for c in admitted})) or "-",
            ),
            (
                "  Envoy: rq pending+active overflow",
                str(shed_by_breaker(after) - shed_by_breaker(before)),
            ),
            (
                "  Envoy: retry overflow, ejections",
                f"{after['upstream_rq_retry_overflow'] - before['upstream_rq_retry_overflow']}, "
                f"{after['outlier_detection.ejections_enforced_total']}",
            ),
        ]
        ejected = [caller.call().seconds for _ in range(10)]
        rows.append(("call while trainer_svc is ejected fails in", spread(ejected)))

        slowest_cancel = cancel_all(platform, desk, orders[: orders_count // 2])
        rows.append(("CancelOrder while trainer_svc is slow", f"max {ms(slowest_cancel)}"))
        set_fault_delay_percent(platform, 0)
        ended = time.monotonic()
        rows.append(("slowness ended -> first CancelSchedule OK", f"{caller.until_ok():.1f} s"))
        until_done = until_all_cancelled(desk, orders[: orders_count // 2])
        rows.append(
            (
                "slowness ended -> every pending cancel done",
                f"{time.monotonic() - ended:.1f} s ({until_done:.1f} s after the first OK call)",
            )
        )

        platform.stop_service("trainer")
        down = [caller.call().seconds for _ in range(10)]
        rows.append(("call while trainer_svc is stopped fails in", spread(down)))
        rest = orders[orders_count // 2 :]
        slowest_cancel = cancel_all(platform, desk, rest)
        rows.append(("CancelOrder while trainer_svc is stopped", f"max {ms(slowest_cancel)}"))
        restart = timed(lambda: platform.start_service("trainer"))
        restarted = time.monotonic()
        rows.append(("trainer_svc restart (process healthy)", f"{restart:.1f} s"))
        rows.append(("restarted -> first CancelSchedule OK", f"{caller.until_ok():.1f} s"))
        until_all_cancelled(desk, rest)
        rows.append(
            ("restarted -> every pending cancel done", f"{time.monotonic() - restarted:.1f} s")
        )
        rows.append(
            (
                "settings",
                f"max_requests={settings.breaker.max_requests} "
                f"max_pending={settings.breaker.max_pending_requests} "
                f"max_retries={settings.breaker.max_retries} "
                f"per_try_timeout={settings.per_try_timeout_s:g}s "
                f"timeout={settings.timeout_s:g}s "
                f"base_ejection={settings.outlier.base_ejection_s:g}s",
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=6, help="orders cancelled per outage")
    parser.add_argument("--burst", type=int, default=32, help="concurrent calls in the burst")
    parser.add_argument("--delay", type=float, default=2.0, help="trainer_svc slowness, seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pt-bench-breaker-") as var_dir:
        rows = run(Path(var_dir), args.orders, args.burst, args.delay)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
