"""A customer's watcher misses no notification across outages: status_svc is killed
(kill -9) twice while 100 class results are registered, and the watcher itself is
disconnected once; each time it reconnects with its resume point (the sequence of the
last notification it received) and the watch replays what it missed."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform
from ptctl.pages import every_page
from ptctl.watch import Backoff, NotificationWatcher
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from tests.conftest import fresh_platform
from tests.fault_kit import Desk, timestamp
from tests.helpers import bearer, wait_for

RESULTS = 100
UNLIMITED = RateLimitSettings.unlimited()
ACK_WAIT_S = 3
"""Events a killed status_svc had fetched come back after the ack wait: short here, so
the test waits seconds, not the default 30 s, for them."""


class Watching:
    """A NotificationWatcher on its own thread, collecting what it yields."""

    def __init__(self, desk: Desk, after: int) -> None:
        self.received: list[status.Notification] = []
        self.watcher = NotificationWatcher(
            desk.status, desk.customer_id, lambda: desk.customer, after, Backoff(0.1, 1.0)
        )
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.failure: BaseException | None = None
        self.thread.start()

    def _collect(self) -> None:
        try:
            self.received.extend(self.watcher.notifications())
        except BaseException as error:  # reported by the test, not lost on the thread
            self.failure = error

    def __len__(self) -> int:
        if self.failure is not None:
            raise AssertionError("the watcher failed") from self.failure
        return len(self.received)

    def stop(self) -> None:
        self.watcher.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of its own: its status_svc is killed, its consumers' ack wait is short,
    and its gateway's rate limit is lifted (driving 100 orders to a result, with the
    reads that wait for each step, is a burst well over the default limit)."""
    service_env = {"PT_CONSUMER_ACK_WAIT_SECONDS": str(ACK_WAIT_S)}
    gateway = GatewaySettings(rate_limit=UNLIMITED)
    with fresh_platform(
        tmp_path_factory.mktemp("watch"), service_env=service_env, gateway=gateway
    ) as running:
        yield running


@pytest.fixture
def desk(platform: Platform) -> Iterator[Desk]:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        yield Desk(platform, channel)


def confirmed_orders(desk: Desk, count: int) -> tuple[list[str], str]:
    """``count`` orders of the desk's customer, all confirmed by one trainer."""
    trainer_id = desk.register_trainer("Watch Kim")
    orders = [desk.place_order(f"Class {number}") for number in range(count)]
    for order_id in orders:
        desk.assignment_in(order_id, (manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,))
        desk.managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=order_id, trainer_id=trainer_id),
            metadata=desk.manager,
            timeout=5,
        )
    coach = bearer(desk.platform.token("trainer", trainer_id))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    for hour, order_id in enumerate(orders):
        desk.schedule_in(order_id, (trainer.SCHEDULE_STATUS_REQUESTED,))
        desk.trainers.ConfirmSchedule(
            trainer.ConfirmScheduleRequest(
                order_id=order_id,
                start_time=timestamp(start + timedelta(hours=hour)),
                duration_minutes=60,
            ),
            metadata=coach,
            timeout=5,
        )
    return orders, trainer_id


def register_results(desk: Desk, trainer_id: str, orders: list[str]) -> None:
    coach = bearer(desk.platform.token("trainer", trainer_id))
    for order_id in orders:
        desk.trainers.RegisterClassResult(
            trainer.RegisterClassResultRequest(order_id=order_id, result="well done"),
            metadata=coach,
            timeout=5,
        )


def kill_status_svc(platform: Platform) -> None:
    for process in platform.services["status"]:
        process.kill()


def test_a_watcher_reconnecting_with_its_resume_point_misses_no_notification(
    platform: Platform, desk: Desk
) -> None:
    orders, trainer_id = confirmed_orders(desk, RESULTS)
    first = Watching(desk, after=0)
    second: Watching | None = None
    try:
        register_results(desk, trainer_id, orders[:30])
        kill_status_svc(platform)  # mid-stream: some of the 30 are still being projected
        register_results(desk, trainer_id, orders[30:50])  # queued in JetStream meanwhile
        platform.start_service("status")
        wait_for(lambda: len(first) >= 50, timeout=60, what="50 notifications after a kill")
        assert first.watcher.reconnects >= 1

        first.stop()  # the watcher goes away; results go on
        resume_point = first.watcher.after
        register_results(desk, trainer_id, orders[50:65])
        kill_status_svc(platform)
        register_results(desk, trainer_id, orders[65:80])
        platform.start_service("status")

        assert resume_point is not None
        second = Watching(desk, after=resume_point)
        register_results(desk, trainer_id, orders[80:])
        wait_for(lambda: len(second) >= RESULTS - 50, timeout=60, what="the other 50")
    finally:
        first.stop()
        if second is not None:
            second.stop()
        if not all(process.running for process in platform.services["status"]):
            platform.start_service("status")

    received = first.received + second.received
    assert sorted(n.order_id for n in received) == sorted(orders)  # none missed, none twice
    listed = every_page(
        lambda page: desk.status.ListNotifications(page, metadata=desk.customer, timeout=5),
        status.ListNotificationsRequest(customer_id=desk.customer_id),
        "notifications",
    )
    recorded = {n.notification_id for n in listed}
    assert {n.notification_id for n in received} == recorded
    sequences = [n.sequence for n in received]
    assert sequences == sorted(sequences)


def test_ptctl_watch_prints_each_notification_as_a_json_line_with_its_sequence(
    platform: Platform, desk: Desk
) -> None:
    [order_id], trainer_id = confirmed_orders(desk, 1)
    token = platform.token("customer", desk.customer_id)
    watch = subprocess.Popen(
        [
            *(sys.executable, "-m", "ptctl.cli", "watch", "--customer", desk.customer_id),
            *("--gateway", platform.gateway_address, "--after", "0", "--token", token),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in watch.stdout or ()])
    reader.start()
    try:
        register_results(desk, trainer_id, [order_id])
        printed = json.loads(lines.get(timeout=30))
    finally:
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=15)
        reader.join(timeout=5)
    assert watch.returncode == 0
    assert printed["order_id"] == order_id
    assert printed["customer_id"] == desk.customer_id
    assert isinstance(printed["sequence"], int) and printed["sequence"] > 0
    assert printed["notification_id"]
