"""``ptctl verify`` against a real platform of its own: clean after a booking flow that
leaves an order in every status, and it catches a real divergence (status_svc's durable
consumer paused in JetStream while an order moves on) by its order id, with a non-zero
exit, and is clean again once the consumer resumes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import nats
import pytest

from ptctl.cli import main
from ptctl.launcher import Platform
from ptctl.verify import Target, audit
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from tests.conftest import fresh_platform
from tests.fault_kit import Desk
from tests.helpers import bearer

SETTLE_S = 20.0
"""Long enough for every event of the flow to reach every consumer on a loaded runner."""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with fresh_platform(tmp_path_factory.mktemp("verify")) as running:
        yield running


@pytest.fixture
def desk(platform: Platform) -> Iterator[Desk]:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        yield Desk(platform, channel)


def every_status(desk: Desk) -> dict[str, str]:
    """One order in each state the flow can leave it in."""
    trainer_id = desk.register_trainer("Verify Kim")
    coach = bearer(desk.platform.token("trainer", trainer_id))
    orders = {name: desk.place_order(name) for name in ("awaiting", "assigned", "confirmed")}
    orders |= {name: desk.place_order(name) for name in ("completed", "cancelled early")}
    orders["cancelled confirmed"] = desk.place_order("cancelled confirmed")
    for hour, name in enumerate(("assigned", "confirmed", "completed", "cancelled confirmed")):
        desk.assign(orders[name], trainer_id)
        if name != "assigned":
            desk.confirm(orders[name], trainer_id, hours_from_now=24 + hour)
    desk.trainers.RegisterClassResult(
        trainer.RegisterClassResultRequest(order_id=orders["completed"], result="well done"),
        metadata=coach,
        timeout=5,
    )
    desk.assignment_in(orders["cancelled early"], (manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,))
    for name in ("cancelled early", "cancelled confirmed"):
        desk.cancel_order(orders[name])
    return orders


def test_a_platform_after_a_booking_flow_in_every_status_is_clean(
    platform: Platform, desk: Desk
) -> None:
    orders = every_status(desk)
    report = audit(Target.of_platform(platform), settle_seconds=SETTLE_S, outbox_age_seconds=30)
    assert report.clean, report.summary()
    assert report.orders >= len(orders)
    placed = {o.order_id: o.status for o in _all_orders(desk)}
    assert {placed[order_id] for order_id in orders.values()} == {
        order.ORDER_STATUS_PLACED,
        order.ORDER_STATUS_CONFIRMED,
        order.ORDER_STATUS_COMPLETED,
        order.ORDER_STATUS_CANCELLED,
    }
    assert {lag.durable for lag in report.consumers} >= {"status_svc", "manager_svc"}
    assert report.dead_letters == 0


def test_a_view_left_behind_is_reported_by_its_order_id_until_it_catches_up(
    platform: Platform,
    desk: Desk,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PT_NATS_ADMIN_SEED_FILE", str(platform.nats_admin.seed_file))
    asyncio.run(_pause_status_consumer(platform, for_seconds=120))
    try:
        behind = desk.place_order("left behind")
        desk.assignment_in(behind, (manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,))
        exit_code = main(_verify_args(platform, settle=2))
        printed = json.loads(capsys.readouterr().out)
    finally:
        asyncio.run(_resume_status_consumer(platform))
    assert exit_code == 1
    assert printed["divergent_order_ids"] == [behind]
    lag = {c["durable"]: c for c in printed["consumers"]}
    assert lag["status_svc"]["num_pending"] >= 1

    report = audit(Target.of_platform(platform), settle_seconds=SETTLE_S)
    assert report.clean, report.summary()
    assert main(_verify_args(platform, settle=SETTLE_S)) == 0


def _all_orders(desk: Desk) -> list[order.Order]:
    listed = desk.orders.ListOrders(
        order.ListOrdersRequest(page_size=100), metadata=desk.manager, timeout=5
    )
    return list(listed.orders)


def _verify_args(platform: Platform, settle: float) -> list[str]:
    target = Target.of_platform(platform)
    metrics = [
        f"--metrics={context}={url}" for context, urls in target.metrics.items() for url in urls
    ]
    return [
        "verify",
        "--gateway",
        target.gateway,
        "--token",
        target.token,
        "--nats-url",
        target.nats_url,
        *metrics,
        "--settle",
        str(settle),
        "--json",
    ]


async def _pause_status_consumer(platform: Platform, for_seconds: float) -> None:
    connection = await nats.connect(platform.nats_url, **platform.nats_admin.connect_options(""))
    try:
        until = datetime.now(UTC) + timedelta(seconds=for_seconds)
        stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
        await connection.jsm().pause_consumer("PT_EVENTS", "status_svc", stamp)
    finally:
        await connection.close()


async def _resume_status_consumer(platform: Platform) -> None:
    connection = await nats.connect(platform.nats_url, **platform.nats_admin.connect_options(""))
    try:
        await connection.jsm().resume_consumer("PT_EVENTS", "status_svc")
    finally:
        await connection.close()


def test_a_stopped_status_svc_fails_the_audit_as_unreadable_until_it_is_back(
    platform: Platform, desk: Desk
) -> None:
    platform.stop_service("status")
    try:
        moved_on = desk.place_order("while status_svc is down")
        desk.assignment_in(moved_on, (manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,))
        report = audit(Target.of_platform(platform), settle_seconds=1)
    finally:
        platform.start_service("status")
    assert not report.clean
    assert any("UNAVAILABLE" in what for what in report.unreachable), report.summary()
    assert audit(Target.of_platform(platform), settle_seconds=SETTLE_S).clean
