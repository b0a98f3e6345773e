"""The bus as three nats-servers with the stream at R3, under booking load: the stream
leader killed with kill -9, and one server cut off the network and healed (the
servers on three hosts: network namespaces on a bridge, the services and Envoy on the
host side). Place and cancel keep answering, the outbox keeps what the bus cannot
acknowledge, and in the end every event took effect once and every order converged."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from ptctl.bus import connected
from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform, PlatformConfig
from ptctl.nats_cluster import NatsNode
from ptctl.pages import every_page
from ptkit.events import subject_for
from ptkit.paging import MAX_PAGE_SIZE
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from tests.helpers import bearer, metric, wait_for
from tests.netns import Hosts, unavailable_reason

GATEWAY = GatewaySettings(rate_limit=RateLimitSettings.unlimited())
QUICK_REDELIVERY = {"PT_CONSUMER_ACK_WAIT_SECONDS": "5"}
"""An event delivered through a server that then went away is redelivered after 5 s, not
30: the convergence the tests wait for comes sooner, the same way."""
CALL_TIMEOUT_S = 10.0
LOAD_THREADS = 3
BOOKING_INTERVAL_S = 0.05
"""Each thread books at most 20 times a second: steady load whose backlog the consumers
work off in seconds once the fault is over (flat out, 8,000 orders took 40 s)."""
PARTITION_SECONDS = 15.0
"""How long a server stays cut off under load: longer than a client takes to notice a
server it cannot reach (two missed pings, PING_INTERVAL_SECONDS apart) and than an
election."""
KILLED_SECONDS = 8.0
"""How long a killed stream leader stays down under load: longer than an election."""


@dataclass
class Bookings:
    """Customers booking through the gateway from a few threads: each places an order
    (with a request id) and cancels every other one it placed, until stopped."""

    platform: Platform
    placed: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    backlog_seen: float = 0.0
    """The most events order_svc's outbox held at once, sampled while the load ran."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Bookings:
        for n in range(LOAD_THREADS):
            thread = threading.Thread(target=self._book, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(CALL_TIMEOUT_S * 3)

    def _book(self, n: int) -> None:
        auth = bearer(self.platform.token("customer", f"cluster-customer-{n}"))
        with grpc.insecure_channel(self.platform.gateway_address) as channel:
            orders = order_grpc.OrderServiceStub(channel)
            count = 0
            while not self._stop.is_set():
                count += 1
                try:
                    placed = orders.PlaceOrder(
                        order.PlaceOrderRequest(
                            customer_name="Ada",
                            class_name=f"Cluster {n}-{count}",
                            request_id=str(uuid.uuid4()),
                        ),
                        metadata=auth,
                        timeout=CALL_TIMEOUT_S,
                    )
                    with self._lock:
                        self.placed.add(placed.order_id)
                    if count % 2 == 0:
                        orders.CancelOrder(
                            order.CancelOrderRequest(order_id=placed.order_id, reason="test"),
                            metadata=auth,
                            timeout=CALL_TIMEOUT_S,
                        )
                        with self._lock:
                            self.cancelled.add(placed.order_id)
                except grpc.RpcError as error:
                    with self._lock:
                        self.failures.append(f"{error.code().name}: {error.details()}")
                if n == 0 and count % 5 == 0:
                    backlog = metric(self.platform, "order", "pt_outbox_backlog")
                    self.backlog_seen = max(self.backlog_seen, backlog)
                self._stop.wait(BOOKING_INTERVAL_S)

    def keep_booking(self, seconds: float, at_least: int) -> None:
        """Go on for ``seconds`` (the length of a fault), and until ``at_least`` more orders
        are placed."""
        target = len(self.placed) + at_least
        self._stop.wait(seconds)
        wait_for(lambda: len(self.placed) >= target, 60, what=f"{target} orders placed")


def stream_leader(platform: Platform) -> str:
    async def leader() -> str:
        async with connected(platform.nats_url, identity=platform.nats_admin) as js:
            info = await js.stream_info(platform.streams.name)
            return info.cluster.leader if info.cluster and info.cluster.leader else ""

    try:
        return asyncio.run(leader())
    except Exception:  # no leader elected yet, or a server still unreachable
        return ""


def bus_converged(platform: Platform, placed: int, cancelled: int) -> bool:
    """Every replica of the stream is current, it holds each event once, and every
    consumer has had every event delivered and acknowledged."""

    async def check() -> bool:
        async with connected(platform.nats_url, identity=platform.nats_admin) as js:
            info = await js.stream_info(platform.streams.name, subjects_filter="pt.order.>")
            consumers = await js.consumers_info(platform.streams.name)
        cluster = info.cluster
        peers = (cluster.replicas or []) if cluster else []
        subjects = info.state.subjects or {}
        return (
            bool(cluster and cluster.leader)
            and len(peers) == 2
            and all(peer.current and not peer.offline for peer in peers)
            and subjects.get(subject_for("order", "OrderPlaced"), 0) == placed
            and subjects.get(subject_for("order", "OrderCancelled"), 0) == cancelled
            and all(c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers)
        )

    try:
        return asyncio.run(check())
    except Exception:
        return False


def assert_converged(platform: Platform, load: Bookings) -> None:
    """Every order's view shows what its customer did, each event took effect once, and
    the outbox is empty."""
    placed, cancelled = set(load.placed), set(load.cancelled)
    assert placed, "the load placed no order"
    # first the bus (cheap to ask): every event stored once and acknowledged by every
    # consumer; then the views, read page by page
    wait_for(
        lambda: bus_converged(platform, len(placed), len(cancelled)),
        timeout=90,
        interval=0.5,
        what="every stream replica current, each event stored once and acknowledged",
    )
    manager_auth = bearer(platform.token("manager", "cluster-manager"))
    with grpc.insecure_channel(platform.gateway_address) as channel:
        views = status_grpc.StatusServiceStub(channel)

        def every_view_converged() -> dict[str, tuple[int, int]] | None:
            found = every_page(
                lambda page: views.ListOrderStatuses(page, metadata=manager_auth, timeout=10),
                status.ListOrderStatusesRequest(page_size=MAX_PAGE_SIZE),
                "statuses",
            )
            seen = {v.order_id: (v.order_status, v.assignment_status) for v in found}
            expected = {
                order_id: (
                    (order.ORDER_STATUS_CANCELLED, manager.ASSIGNMENT_STATUS_CANCELLED)
                    if order_id in cancelled
                    else (order.ORDER_STATUS_PLACED, manager.ASSIGNMENT_STATUS_AWAITING_TRAINER)
                )
                for order_id in placed
            }
            return seen if seen == expected else None

        wait_for(every_view_converged, timeout=30, interval=1, what="every order's view")
    effects = {
        ("status", "OrderPlaced"): len(placed),
        ("status", "OrderCancelled"): len(cancelled),
        ("manager", "OrderPlaced"): len(placed),
        ("manager", "OrderCancelled"): len(cancelled),
    }
    for (context, event_type), expected in effects.items():
        handled = metric(
            platform,
            context,
            "pt_events_handled_total",
            consumer=f"{context}_svc",
            event_type=event_type,
        )
        assert handled == expected, (
            f"{context}_svc applied {event_type} {handled} times, not {expected}"
        )
    assert metric(platform, "order", "pt_outbox_backlog") == 0


def booked_through(
    platform: Platform, fault: Callable[[], None], heal: Callable[[], None], seconds: float
) -> Bookings:
    """Book under load, inflict ``fault`` once some orders exist, keep booking, ``heal``,
    keep booking a little more; the load's record."""
    with Bookings(platform) as load:
        load.keep_booking(1, at_least=10)
        fault()
        load.keep_booking(seconds, at_least=20)
        heal()
        load.keep_booking(3, at_least=10)
    assert load.failures == [], f"{len(load.failures)} failed calls: {load.failures[:5]}"
    assert load.backlog_seen > 0, "the stream's leader was lost, yet nothing waited in the outbox"
    return load


def test_kill_9_of_the_stream_leader_under_load_loses_and_repeats_nothing(tmp_path: Path) -> None:
    config = PlatformConfig.ephemeral(
        tmp_path, nats_cluster=3, gateway=GATEWAY, service_env=QUICK_REDELIVERY
    )
    with Platform(config) as platform:
        assert platform.streams.replicas == 3
        killed: list[str] = []

        def kill_leader() -> None:
            leader = wait_for(lambda: stream_leader(platform), what="a stream leader")
            platform.nats_process(leader).kill()
            killed.append(leader)

        load = booked_through(
            platform, kill_leader, lambda: platform.start_nats_node(killed[0]), KILLED_SECONDS
        )
        assert_converged(platform, load)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"the partition test needs network namespaces: {reason}")
    with Hosts(3) as hosts:
        yield hosts


def test_a_server_cut_off_the_network_under_load_and_healed_loses_and_repeats_nothing(
    tmp_path: Path, hosts: Hosts
) -> None:
    nodes = [
        NatsNode(f"ptplatform-{n}", hosts.address(n), 4222, 6222, hosts.prefix(n))
        for n in (1, 2, 3)
    ]
    config = PlatformConfig.ephemeral(
        tmp_path,
        nats_cluster=3,
        nats_nodes=nodes,
        gateway=GATEWAY,
        service_env=QUICK_REDELIVERY,
    )
    with Platform(config) as platform:
        cut: list[int] = []

        def cut_the_leader_off() -> None:
            leader = wait_for(lambda: stream_leader(platform), what="a stream leader")
            cut.append(int(leader.rsplit("-", 1)[1]))
            hosts.cut(cut[0])

        load = booked_through(
            platform, cut_the_leader_off, lambda: hosts.heal(cut[0]), PARTITION_SECONDS
        )
        assert_converged(platform, load)
