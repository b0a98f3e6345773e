"""Fault isolation with real processes (issue 5): nats-server, the four services and
Envoy, each test on a platform of its own that it stops, restarts parts of and always
stops. Cancelling an order never waits for manager_svc or trainer_svc; the cancel of the
assignment and of the schedule catches up once they answer again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import grpc

from ptctl.envoy import GatewaySettings, InternalRouteSettings
from ptctl.launcher import Platform
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from tests.conftest import fresh_platform
from tests.fault_kit import (
    ACTIVE_ASSIGNMENT,
    Desk,
    cancel_schedule_burst,
    cancels_retried,
    envoy_counters,
    set_fault_delay_percent,
    shed_by_breaker,
)
from tests.helpers import wait_for

T = TypeVar("T")
ANSWERS_AT_ONCE_S = 2.0
"""order_svc alone answers in milliseconds; a PlaceOrder or CancelOrder that waited on a
stopped or slow service would take the internal route's timeout (2.5 s) or the call's
deadline (5 s). The margin is for a loaded 2-core runner."""
SLOW_TRAINER_DELAY_S = 2.0
"""Longer than the internal route's per-try timeout (1 s): every admitted call times out."""
CATCH_UP_S = 45.0


@contextmanager
def running(var_dir: Path, **config: object) -> Iterator[tuple[Platform, Desk]]:
    platform = fresh_platform(var_dir, **config)
    platform.start()
    try:
        with grpc.insecure_channel(platform.gateway_address) as channel:
            yield platform, Desk(platform, channel)
    finally:
        platform.stop()


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def place_at_once(desk: Desk) -> str:
    order_id, seconds = timed(desk.place_order)
    assert seconds < ANSWERS_AT_ONCE_S
    return order_id


def cancel_at_once(desk: Desk, order_id: str) -> None:
    cancelled, seconds = timed(lambda: desk.cancel_order(order_id))
    assert cancelled.status == order.ORDER_STATUS_CANCELLED
    assert seconds < ANSWERS_AT_ONCE_S


def test_cancel_while_trainer_svc_is_down_completes_after_it_restarts(tmp_path: Path) -> None:
    with running(tmp_path) as (platform, desk):
        coach = desk.register_trainer()
        requested, confirmed = desk.place_order(), desk.place_order()
        desk.assign(requested, coach)
        desk.assign(confirmed, coach)
        desk.confirm(confirmed, coach)

        platform.stop_service("trainer")
        for order_id in (requested, confirmed):
            cancel_at_once(desk, order_id)
        wait_for(
            lambda: cancels_retried(platform) >= 2,
            what="manager_svc failing to cancel both schedules and retrying later",
        )
        assert desk.assignment(requested).status == manager.ASSIGNMENT_STATUS_TRAINER_ASSIGNED
        assert desk.assignment(confirmed).status == manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED

        platform.start_service("trainer")
        for order_id in (requested, confirmed):
            wait_for(
                lambda o=order_id: desk.all_cancelled(o),
                timeout=CATCH_UP_S,
                what=f"assignment, schedule and view of {order_id} CANCELLED",
            )


def test_slow_trainer_svc_trips_the_breaker_and_cancels_complete_when_it_recovers(
    tmp_path: Path,
) -> None:
    slow = InternalRouteSettings(fault_delay_s=SLOW_TRAINER_DELAY_S, fault_delay_percent=100)
    with running(tmp_path, gateway=GatewaySettings(internal=slow)) as (platform, desk):
        max_requests = platform.config.gateway.internal.breaker.max_requests
        coach = desk.register_trainer()
        orders = [desk.place_order(f"Class {n}") for n in range(3)]
        for order_id in orders:
            desk.assign(order_id, coach)

        burst = cancel_schedule_burst(platform, calls=4 * max_requests)
        shed = [call for call in burst if call.shed]
        admitted = [call for call in burst if not call.shed]
        assert shed and admitted
        assert len(shed) >= len(burst) - max_requests
        assert all(call.code == grpc.StatusCode.UNAVAILABLE for call in shed)
        # A shed call never reaches trainer_svc: it is answered before any admitted one,
        # which waits for the per-try timeout. (How fast in ms: `make bench-breaker`.)
        assert max(call.seconds for call in shed) < min(call.seconds for call in admitted)
        assert all(call.code != grpc.StatusCode.OK for call in admitted)
        counters = envoy_counters(platform)
        assert shed_by_breaker(counters) >= len(shed)
        assert counters["outlier_detection.ejections_enforced_total"] >= 1

        for order_id in orders:
            cancel_at_once(desk, order_id)
        wait_for(
            lambda: cancels_retried(platform) >= len(orders),
            timeout=20,
            what="manager_svc failing each schedule cancel and retrying later",
        )
        for order_id in orders:
            assert desk.assignment(order_id).status in ACTIVE_ASSIGNMENT

        set_fault_delay_percent(platform, 0)
        for order_id in orders:
            wait_for(
                lambda o=order_id: desk.all_cancelled(o),
                timeout=CATCH_UP_S,
                what=f"assignment, schedule and view of {order_id} CANCELLED",
            )


def test_orders_are_placed_and_cancelled_while_manager_trainer_and_status_are_down(
    tmp_path: Path,
) -> None:
    with running(tmp_path) as (platform, desk):
        coach = desk.register_trainer()
        assigned = desk.place_order()
        desk.assign(assigned, coach)

        for context in ("manager", "trainer", "status"):
            platform.stop_service(context)
        kept, dropped = place_at_once(desk), place_at_once(desk)
        cancel_at_once(desk, assigned)
        cancel_at_once(desk, dropped)

        for context in ("manager", "trainer", "status"):
            platform.start_service(context)
        desk.view_where(
            kept,
            timeout=CATCH_UP_S,
            order_status=order.ORDER_STATUS_PLACED,
            assignment_status=manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,
        )
        desk.view_where(
            dropped,
            timeout=CATCH_UP_S,
            order_status=order.ORDER_STATUS_CANCELLED,
            assignment_status=manager.ASSIGNMENT_STATUS_CANCELLED,
        )
        wait_for(
            lambda: desk.all_cancelled(assigned),
            timeout=CATCH_UP_S,
            what=f"assignment, schedule and view of {assigned} CANCELLED",
        )


def test_orders_are_placed_and_cancelled_while_nats_is_down(tmp_path: Path) -> None:
    with running(tmp_path) as (platform, desk):
        coach = desk.register_trainer()
        assigned = desk.place_order()
        desk.assign(assigned, coach)

        platform.stop_nats()
        kept = place_at_once(desk)
        cancel_at_once(desk, assigned)
        assert desk.assignment(kept) is None

        platform.start_nats()
        desk.view_where(
            kept,
            timeout=CATCH_UP_S,
            order_status=order.ORDER_STATUS_PLACED,
            assignment_status=manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,
        )
        wait_for(
            lambda: desk.all_cancelled(assigned),
            timeout=CATCH_UP_S,
            what=f"assignment, schedule and view of {assigned} CANCELLED",
        )
        assert desk.schedule(assigned).status == trainer.SCHEDULE_STATUS_CANCELLED
