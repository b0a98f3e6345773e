"""Nothing is dropped without a record, with real processes: status_svc crash-looping
right after each fetch loses nothing, a poison event ends in PT_DEAD_LETTERS and
``ptctl dlq redrive`` applies it exactly once (``ptctl verify`` is the oracle after the
crash loop), a kill between a batch's commit and its acks applies nothing twice, a killer
event is isolated and alone
dead-lettered, and a rolling restart under load makes no event wait out the ack wait.

Faults come from a test-side wrapper (``python -m tests.fault_injection.status_svc``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ptctl import dlq
from ptctl.launcher import ROOT, Platform, PlatformConfig, grpc_serving
from ptctl.pages import every_page
from ptctl.verify import EVENTS_STREAM, Target, audit
from ptkit import dead_letters as dl
from ptkit.events import subject_of
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from status_svc.application.policies import POLICIES as STATUS_POLICIES
from tests.fault_kit import Desk
from tests.helpers import bearer, metric, wait_for

FAULTY = "tests.fault_injection.status_svc"
CUSTOMER = "loss-customer"


@pytest.fixture
def faulty_platform(tmp_path: Path) -> Iterator[Platform]:
    """order_svc and status_svc, status_svc run by the fault wrapper (no fault yet)."""
    config = PlatformConfig.ephemeral(
        tmp_path,
        contexts=["order", "status"],
        service_env={"PT_CONSUMER_ACK_WAIT_SECONDS": "2", "PT_CONSUMER_MAX_FAILURES": "3"},
        service_modules={"status": FAULTY},
    )
    with Platform(config) as platform:
        yield platform


class Front:
    """A customer using the platform through the gateway."""

    def __init__(self, platform: Platform) -> None:
        self.channel = grpc.insecure_channel(platform.gateway_address)
        self.orders = order_grpc.OrderServiceStub(self.channel)
        self.status = status_grpc.StatusServiceStub(self.channel)
        self.auth = bearer(platform.token("customer", CUSTOMER))

    def place(self, class_name: str) -> str:
        request = order.PlaceOrderRequest(customer_name="Lou", class_name=class_name)
        return self.orders.PlaceOrder(request, metadata=self.auth, timeout=10).order_id

    def views(self) -> dict[str, status.OrderStatus]:
        found = every_page(
            lambda page: self.status.ListOrderStatuses(page, metadata=self.auth, timeout=10),
            status.ListOrderStatusesRequest(),
            "statuses",
        )
        return {view.order_id: view for view in found}

    def views_of(self, order_ids: set[str]) -> dict[str, status.OrderStatus]:
        try:
            views = self.views()
        except grpc.RpcError:  # status_svc restarting
            return {}
        return views if order_ids <= set(views) else {}


def restart_status(platform: Platform, faults: dict[str, str], module: str | None = FAULTY) -> None:
    platform.stop_service("status")
    for name in (
        "PT_FAULT_KILL_AFTER_FETCH",
        "PT_FAULT_FAIL_MARK",
        "PT_FAULT_KILL_MARK",
        "PT_FAULT_KILL_AFTER_COMMIT",
    ):
        platform.config.service_env.pop(name, None)
    platform.config.service_env.update(faults)
    platform.run_service_from("status", module)
    platform.start_service("status", wait=False)


def status_process(platform: Platform) -> subprocess.Popen[bytes]:
    process = platform.services["status"][0].process
    assert process is not None
    return process


def died(platform: Platform, timeout: float = 30) -> int:
    """Wait for status_svc to die by itself; its exit code."""
    process = status_process(platform)
    code = process.wait(timeout)
    platform.services["status"][0].process = None
    return code


def dead_letters(platform: Platform) -> list[dlq.DeadLetter]:
    async def read() -> list[dlq.DeadLetter]:
        async with dlq.connected(platform.nats_url, identity=platform.nats_admin) as js:
            return await dlq.dead_letters(js)

    return asyncio.run(read())


def ptctl_dlq(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptctl.cli", "dlq", "--nats-url", platform.nats_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PT_NATS_ADMIN_SEED_FILE": str(platform.nats_admin.seed_file)},
    )


def assert_views_right(views: dict[str, status.OrderStatus], classes: dict[str, str]) -> None:
    for order_id, class_name in classes.items():
        view = views[order_id]
        assert (view.class_name, view.customer_name, view.customer_id) == (
            class_name,
            "Lou",
            CUSTOMER,
        )


@pytest.fixture
def booking_platform(tmp_path: Path) -> Iterator[Platform]:
    """The whole platform, status_svc run by the fault wrapper."""
    config = PlatformConfig.ephemeral(
        tmp_path,
        service_env={"PT_CONSUMER_ACK_WAIT_SECONDS": "2"},
        service_modules={"status": FAULTY},
    )
    with Platform(config) as platform:
        yield platform


def settled(platform: Platform, wanted: float) -> tuple[float, float]:
    """(handled, duplicates) of the restarted status_svc once it has settled ``wanted``
    events. What a killed process fetched comes again only after its ack wait, so the
    views (and the audit) can be right before the last of it is settled: an event that
    changes nothing the audit compares."""

    def counts() -> tuple[float, float] | None:
        handled = metric(platform, "status", "pt_events_handled_total", consumer="status_svc")
        duplicates = metric(platform, "status", "pt_events_duplicate_total", consumer="status_svc")
        return (handled, duplicates) if handled + duplicates >= wanted else None

    return wait_for(counts, timeout=30, what=f"{wanted:.0f} events settled by status_svc")


def events_for_status(platform: Platform) -> int:
    """How many events on PT_EVENTS status_svc's policies subscribe to."""
    subjects = {subject_of(kind) for kind in STATUS_POLICIES}

    async def count() -> int:
        async with dlq.connected(platform.nats_url, identity=platform.nats_admin) as js:
            info = await js.stream_info(EVENTS_STREAM, subjects_filter=">")
        return sum(n for subject, n in (info.state.subjects or {}).items() if subject in subjects)

    return asyncio.run(count())


def test_status_killed_right_after_each_fetch_12_times_then_applies_every_event_once(
    booking_platform: Platform,
) -> None:
    platform = booking_platform
    restart_status(platform, {"PT_FAULT_KILL_AFTER_FETCH": "1"})
    with grpc.insecure_channel(platform.gateway_address) as channel:
        desk = Desk(platform, channel)
        coach = desk.register_trainer()
        _placed, assigned, confirmed, held, cancelled = (desk.place_order() for _ in range(5))
        for order_id in (assigned, confirmed, held, cancelled):
            desk.assign(order_id, coach)
        for hours, order_id in enumerate((confirmed, held), start=24):
            desk.confirm(order_id, coach, hours_from_now=hours)
        desk.trainers.RegisterClassResult(
            trainer.RegisterClassResultRequest(order_id=held, result="Strong finish"),
            metadata=bearer(platform.token("trainer", coach)),
            timeout=5,
        )
        desk.cancel_order(cancelled)
        desk.assignment_in(cancelled, (manager.ASSIGNMENT_STATUS_CANCELLED,))

        for kill in range(12):
            assert died(platform) == 137, f"kill {kill + 1}: status_svc died right after a fetch"
            platform.start_service("status", wait=False)
        died(platform)
        restart_status(platform, {}, module=None)
        platform.wait_service("status")

        desk.view_where(held, timeout=30, order_status=order.ORDER_STATUS_COMPLETED)
        report = audit(Target.of_platform(platform), settle_seconds=20)
        assert report.clean, report.summary()
        assert report.orders == 5
    wanted = events_for_status(platform)
    handled, duplicates = settled(platform, wanted)
    assert handled == wanted, "every event status_svc subscribes to applied exactly once"
    assert duplicates == 0
    assert dead_letters(platform) == [], "a kill before any handler counts against nothing"


def test_status_killed_after_a_batch_commit_before_its_acks_finds_those_events_handled(
    booking_platform: Platform,
) -> None:
    platform = booking_platform
    platform.stop_service("status")  # the events wait on the stream: one backlog, one batch
    with grpc.insecure_channel(platform.gateway_address) as channel:
        desk = Desk(platform, channel)
        coach = desk.register_trainer()
        order_ids = [desk.place_order() for _ in range(5)]
        for hours, order_id in enumerate(order_ids[:3], start=24):
            desk.assign(order_id, coach)
            desk.confirm(order_id, coach, hours_from_now=hours)
        # 5 OrderPlaced, 3 TrainerAssigned, ScheduleConfirmed and OrderConfirmed each
        wait_for(lambda: events_for_status(platform) >= 14, timeout=30, what="events published")
        restart_status(platform, {"PT_FAULT_KILL_AFTER_COMMIT": "1"})
        assert died(platform) == 137, "status_svc died right after its first batch commit"
        restart_status(platform, {}, module=None)
        platform.wait_service("status")

        for order_id in order_ids[:3]:
            desk.view_where(order_id, timeout=30, order_status=order.ORDER_STATUS_CONFIRMED)
        report = audit(Target.of_platform(platform), settle_seconds=20)
        assert report.clean, report.summary()
        assert report.orders == 5
    wanted = events_for_status(platform)
    handled, duplicates = settled(platform, wanted)
    counts = f"handled {handled}, duplicates {duplicates}, events {wanted}"
    assert duplicates >= 2, f"the killed batch came again and was found handled ({counts})"
    assert handled + duplicates == wanted, f"every event applied exactly once ({counts})"
    assert dead_letters(platform) == []


def test_a_poison_event_is_dead_lettered_and_a_redrive_after_the_fix_applies_it_once(
    faulty_platform: Platform,
) -> None:
    platform, front = faulty_platform, Front(faulty_platform)
    restart_status(platform, {"PT_FAULT_FAIL_MARK": "Poison Class"})
    platform.wait_service("status")
    poison = front.place("Poison Class")
    [letter] = wait_for(lambda: dead_letters(platform), timeout=30, what="a dead letter")
    later = front.place("Later Class")
    wait_for(lambda: front.views_of({later}), timeout=20, what="a later event applied")
    assert poison not in front.views()
    headers = letter.headers
    assert (headers[dl.CONSUMER], headers[dl.EVENT_TYPE], headers[dl.ORDER_ID]) == (
        "status_svc",
        "OrderPlaced",
        poison,
    )
    assert (headers[dl.FAILURES], headers[dl.DELIVERIES]) == ("3", "3")
    assert "injected failure" in headers[dl.ERROR]
    assert (
        metric(platform, "status", "pt_events_dead_lettered_total", event_type="OrderPlaced") == 1
    )

    listed = ptctl_dlq(platform, "list")
    assert listed.returncode == 0 and poison in listed.stdout, listed.stderr
    shown = ptctl_dlq(platform, "show", str(letter.id))
    assert shown.returncode == 0 and '"orderPlaced"' in shown.stdout, shown.stderr

    restart_status(platform, {}, module=None)  # the handler is fixed
    platform.wait_service("status")
    redriven = ptctl_dlq(platform, "redrive", str(letter.id))
    assert redriven.returncode == 0, redriven.stderr
    views = wait_for(lambda: front.views_of({poison, later}), timeout=20, what="redriven")
    assert_views_right(views, {poison: "Poison Class", later: "Later Class"})
    assert dead_letters(platform) == []

    again = ptctl_dlq(platform, "redrive", str(letter.id))
    assert again.returncode == 1 and "no dead letter" in again.stderr
    everything = ptctl_dlq(platform, "redrive", "--all")
    assert everything.returncode == 0 and "0 dead letter(s) redriven" in everything.stdout
    handled = metric(platform, "status", "pt_events_handled_total", consumer="status_svc")
    assert handled == 1, "the redriven event applied once; a second redrive changed nothing"
    assert front.views()[poison].class_name == "Poison Class"


def test_an_event_that_kills_status_svc_is_isolated_and_alone_dead_lettered(
    faulty_platform: Platform,
) -> None:
    platform, front = faulty_platform, Front(faulty_platform)
    restart_status(platform, {"PT_FAULT_KILL_MARK": "Killer Class"})
    platform.wait_service("status")
    killer = front.place("Killer Class")
    classes = {front.place(f"Class {n}"): f"Class {n}" for n in range(3)}
    lives = 0

    def died_or_dead_lettered() -> str:
        if status_process(platform).poll() is not None:
            return "died"
        return "dead-lettered" if dead_letters(platform) else ""

    while wait_for(died_or_dead_lettered, timeout=30, what="a crash or a dead letter") == "died":
        assert died(platform) == 137
        lives += 1
        assert lives <= 10, "the killer is dead-lettered after a bounded number of crashes"
        platform.start_service("status", wait=False)
    assert lives >= 3, "the killer killed status_svc before it was isolated"

    views = wait_for(lambda: front.views_of(set(classes)), timeout=30, what="the others")
    assert_views_right(views, classes)
    assert killer not in views
    [letter] = dead_letters(platform)
    assert letter.headers[dl.ORDER_ID] == killer
    assert letter.headers[dl.CRASHES] == "3"
    assert "killed its consumer 3 times" in letter.headers[dl.ERROR]
    assert status_process(platform).poll() is None, "status_svc keeps running"


@pytest.fixture
def replicated(tmp_path: Path, postgres_databases: Callable[[], str]) -> Iterator[Platform]:
    status_db = postgres_databases()
    config = PlatformConfig.ephemeral(
        tmp_path,
        contexts=["order", "status"],
        replicas={"status": 2},
        database_urls={"status": [status_db, status_db]},
        service_env={"PT_CONSUMER_ACK_WAIT_SECONDS": "30"},
    )
    with Platform(config) as platform:
        yield platform


def test_a_rolling_restart_of_status_under_load_makes_no_event_wait_out_the_ack_wait(
    replicated: Platform,
) -> None:
    platform, front = replicated, Front(replicated)
    placed: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def load() -> None:
        while not done.wait(0.1):  # well under the gateway's rate limit
            try:
                placed[front.place(f"Class {len(placed)}")] = time.monotonic()
                views = front.views()
            except grpc.RpcError:  # refused or timed out: no order placed, or seen later
                continue
            now = time.monotonic()
            for order_id in views.keys() - seen.keys():
                seen[order_id] = now

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        for replica in (0, 1):
            process = platform.services["status"][replica]
            wanted = 10 * (replica + 1)
            wait_for(lambda n=wanted: len(placed) >= n, timeout=30, what="load")
            process.stop()
            process.start()
            address = platform.service_address("status", replica)
            wait_for(lambda a=address: grpc_serving(a), timeout=30, what="replica back")
        wait_for(lambda: len(placed) >= 30, timeout=30, what="load after the restarts")
    finally:
        done.set()
        loader.join(30)

    def all_seen() -> bool:
        try:
            views = front.views()
        except grpc.RpcError:
            return False
        now = time.monotonic()
        for order_id in views.keys() - seen.keys():
            seen[order_id] = now
        return set(placed) <= set(seen)

    wait_for(all_seen, timeout=30, what="every order's view")
    waits = {order_id: seen[order_id] - placed[order_id] for order_id in placed}
    slowest = max(waits.values())
    assert slowest < 10, f"an event waited {slowest:.1f}s (ack wait 30s)"
