"""Envoy's edge limits, through the real gateway: a 50 MB body is refused with 413 (and
RESOURCE_EXHAUSTED for gRPC callers) while Envoy's memory stays bounded; streams that
send their headers and never end hold no request slot of a service, so another
customer's call is served at once, on every route and on the internal listener; Envoy
resets such a stream after its request timeout.

A platform of its own, with rate limits too high to matter, so what is shown here is the
edge limits and not the rate limit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from ptctl.envoy import EdgeSettings, GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform
from ptkit.auth import Role
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from status_svc.application.watch import WatchLimits
from tests.conftest import fresh_platform
from tests.fault_kit import manager_svc_metadata

REQUEST_TIMEOUT_S = 4.0
HALF_OPEN_STREAMS = 300
CONNECTIONS = 4
"""Envoy takes 100 streams per HTTP/2 connection, so the streams use several."""
FIFTY_MB = 50 * 1024 * 1024
RSS_GROWTH_BOUND = 96 * 1024 * 1024


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    gateway = GatewaySettings(
        rate_limit=RateLimitSettings.unlimited(),
        edge=EdgeSettings(request_timeout_s=REQUEST_TIMEOUT_S),
    )
    var_dir: Path = tmp_path_factory.mktemp("edge")
    with fresh_platform(var_dir, gateway=gateway) as platform:
        yield platform


def envoy_rss(platform: Platform) -> int:
    """Envoy's resident memory, in bytes, from /proc."""
    assert platform.envoy.process is not None
    status_file = Path(f"/proc/{platform.envoy.process.pid}/status").read_text()
    (line,) = [line for line in status_file.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


class PeakRss:
    """Samples Envoy's RSS every 20 ms in a thread while the block runs."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.before = envoy_rss(platform)
        self.peak = self.before
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, envoy_rss(self.platform))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def http_upload(platform: Platform, token: str, chunked: bool) -> int:
    """POST /v1/orders with a 50 MB JSON body; the HTTP status Envoy answers."""
    host, port = platform.gateway_address.split(":")
    length = "transfer-encoding: chunked" if chunked else f"content-length: {FIFTY_MB}"
    head = (
        f"POST /v1/orders HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {token}\r\n"
        f"content-type: application/json\r\n{length}\r\n\r\n"
    )
    megabyte = b"a" * (1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        if chunked:
            sock.sendall(b"%x\r\n" % FIFTY_MB)
        try:
            for _ in range(FIFTY_MB // len(megabyte)):
                sock.sendall(megabyte)
        except OSError:
            pass  # Envoy answered and closed the connection before the whole body was sent
        reply = sock.recv(64).decode(errors="replace")
    return int(reply.split()[1])


def grpc_upload(platform: Platform, token: str) -> grpc.StatusCode:
    """PlaceOrder with a 50 MB message; the gRPC status."""
    with grpc.insecure_channel(
        platform.gateway_address, options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        try:
            order_grpc.OrderServiceStub(channel).PlaceOrder(
                order.PlaceOrderRequest(customer_name="a" * FIFTY_MB, class_name="Yoga"),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=60,
            )
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_fifty_mb_bodies_are_refused_with_413_and_envoys_memory_stays_bounded(
    edge: Platform,
) -> None:
    token = edge.token("customer", "uploader")
    results: list[object] = []

    def run(upload: Callable[[], object]) -> None:
        results.append(upload())

    uploads: list[Callable[[], object]] = [
        *(lambda: http_upload(edge, token, chunked=False) for _ in range(2)),
        *(lambda: http_upload(edge, token, chunked=True) for _ in range(2)),
        *(lambda: grpc_upload(edge, token) for _ in range(4)),
    ]
    threads = [threading.Thread(target=run, args=(upload,)) for upload in uploads]
    with PeakRss(edge) as rss:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

    assert sorted(map(str, results)) == sorted(
        ["413"] * 4 + [str(grpc.StatusCode.RESOURCE_EXHAUSTED)] * 4
    )
    growth = rss.peak - rss.before
    assert growth < RSS_GROWTH_BOUND, f"Envoy grew by {growth / 2**20:.0f} MiB"


# -- half-open streams -----------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    method: str
    request: Any
    response: Any

    def stream(self, channel: grpc.aio.Channel) -> Any:
        return channel.stream_stream(
            self.method, type(self.request).SerializeToString, self.response.FromString
        )

    def unary(self, channel: grpc.aio.Channel) -> Any:
        return channel.unary_unary(
            self.method, type(self.request).SerializeToString, self.response.FromString
        )


@dataclass(frozen=True)
class Route:
    """Streams are held open on ``attack``; ``honest`` is another caller's call that uses
    the same cluster."""

    attack: Call
    role: Role
    honest: Call | None = None
    internal: bool = False

    @property
    def honest_call(self) -> Call:
        return self.honest or self.attack


ORDER, MANAGER = "/ptplatform.order.v1.OrderService/", "/ptplatform.manager.v1.ManagerService/"
TRAINER, STATUS = "/ptplatform.trainer.v1.TrainerService/", "/ptplatform.status.v1.StatusService/"
SOME_ORDER = "7d4f9c1e-5b2a-4e8f-9c3d-1a2b3c4d5e6f"
ROUTES = {
    "order": Route(
        Call(ORDER + "ListOrders", order.ListOrdersRequest(), order.ListOrdersResponse),
        Role.CUSTOMER,
    ),
    "manager": Route(
        Call(MANAGER + "ListTrainers", manager.ListTrainersRequest(), manager.ListTrainersResponse),
        Role.TRAINER,
    ),
    "trainer": Route(
        Call(
            TRAINER + "ListSchedules", trainer.ListSchedulesRequest(), trainer.ListSchedulesResponse
        ),
        Role.TRAINER,
    ),
    "status": Route(
        Call(
            STATUS + "ListOrderStatuses",
            status.ListOrderStatusesRequest(),
            status.ListOrderStatusesResponse,
        ),
        Role.CUSTOMER,
    ),
    "watch": Route(
        Call(
            STATUS + "WatchNotifications", status.WatchNotificationsRequest(), status.Notification
        ),
        Role.CUSTOMER,
        Call(
            STATUS + "ListNotifications",
            status.ListNotificationsRequest(),
            status.ListNotificationsResponse,
        ),
    ),
    "internal": Route(
        Call(
            TRAINER + "CancelSchedule",
            trainer.CancelScheduleRequest(order_id=SOME_ORDER),
            trainer.Schedule,
        ),
        Role.SERVICE,
        internal=True,
    ),
}


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def route_token(platform: Platform, role: Role, subject: str) -> str:
    """A user's token; manager_svc's service token for the internal listener."""
    if role is Role.SERVICE:
        ((_, authorization),) = manager_svc_metadata(platform)
        return authorization.removeprefix("Bearer ")
    return platform.token(role, subject)


def address(platform: Platform, route: Route) -> str:
    if route.internal:
        return f"127.0.0.1:{platform.config.gateway.internal.port}"
    return platform.gateway_address


async def half_open(
    channels: list[grpc.aio.Channel], route: Route, token: str, count: int
) -> tuple[list[grpc.aio.StreamUnaryCall | grpc.aio.StreamStreamCall], asyncio.Event]:
    """``count`` calls that send their headers and one message and never end the stream."""
    never = asyncio.Event()

    async def requests() -> AsyncIterator[Any]:
        yield route.attack.request
        await never.wait()

    calls = [
        route.attack.stream(channels[i % len(channels)])(requests(), metadata=_auth(token))
        for i in range(count)
    ]
    return calls, never


def separate_connections(target: str) -> list[grpc.aio.Channel]:
    return [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS)
    ]


async def envoy_holds(platform: Platform, route: Route, streams: int, within: float = 10) -> None:
    """Wait until the route's listener holds ``streams`` active requests (Envoy's own gauge)."""
    listener = "internal" if route.internal else "gateway"
    pattern = rf"^http\.{listener}\.downstream_rq_active$"
    deadline = time.monotonic() + within
    active = 0
    while time.monotonic() < deadline:
        (stat,) = await asyncio.to_thread(platform.admin.stats, pattern)
        active = int(stat["value"])
        if active >= streams:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"Envoy held {active} of the {streams} streams after {within:.0f}s")


async def _starve_then_call(platform: Platform, route: Route) -> tuple[object, float]:
    target = address(platform, route)
    channels = separate_connections(target)
    attacker = route_token(platform, route.role, "mallory")
    calls, _ = await half_open(channels, route, attacker, HALF_OPEN_STREAMS)
    try:
        await envoy_holds(platform, route, HALF_OPEN_STREAMS)
        async with grpc.aio.insecure_channel(target) as channel:
            started = time.monotonic()
            honest = route.honest_call
            answer = await honest.unary(channel)(
                honest.request,
                metadata=_auth(route_token(platform, route.role, "honest-caller")),
                timeout=5,
            )
            seconds = time.monotonic() - started
        still_open = sum(not call.done() for call in calls)
        assert still_open == HALF_OPEN_STREAMS, "the streams were refused, not held open"
        return answer, seconds
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()


@pytest.mark.parametrize("name", list(ROUTES))
def test_half_open_streams_of_one_caller_do_not_starve_another(edge: Platform, name: str) -> None:
    answer, seconds = asyncio.run(_starve_then_call(edge, ROUTES[name]))
    assert answer is not None
    assert seconds < 2.0, f"the honest call took {seconds:.1f}s"


async def _stream_that_never_ends(platform: Platform) -> tuple[grpc.StatusCode, str, float]:
    route = ROUTES["order"]
    async with grpc.aio.insecure_channel(platform.gateway_address) as channel:
        token = route_token(platform, Role.CUSTOMER, "slow-client")
        (call,), _ = await half_open([channel], route, token, 1)
        started = time.monotonic()
        try:
            await call.read()
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or "", time.monotonic() - started
        raise AssertionError("a stream that never ended was answered")


def test_a_stream_that_never_ends_is_reset_after_the_request_timeout(edge: Platform) -> None:
    code, details, seconds = asyncio.run(_stream_that_never_ends(edge))
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "request timeout" in details
    assert REQUEST_TIMEOUT_S - 0.5 < seconds < REQUEST_TIMEOUT_S + 3


async def all_but_open_watches_refused(
    streams: list[grpc.aio.UnaryStreamCall], open_watches: int, within: float = 15
) -> None:
    """Wait until every watch beyond the ``open_watches`` status_svc keeps has been refused."""
    deadline = time.monotonic() + within
    while sum(stream.done() for stream in streams) < len(streams) - open_watches:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {sum(s.done() for s in streams)} watches were answered")
        await asyncio.sleep(0.05)


async def _many_watches_then_status_calls(platform: Platform, watches: int) -> float:
    channels = separate_connections(platform.gateway_address)
    watcher = _auth(platform.token(Role.CUSTOMER, "many-watches"))
    streams = [
        status_grpc.StatusServiceStub(channels[i % len(channels)]).WatchNotifications(
            status.WatchNotificationsRequest(), metadata=watcher
        )
        for i in range(watches)
    ]
    try:
        await all_but_open_watches_refused(streams, WatchLimits().per_caller)
        async with grpc.aio.insecure_channel(platform.gateway_address) as channel:
            stub = status_grpc.StatusServiceStub(channel)
            other = _auth(platform.token(Role.CUSTOMER, "other-customer"))
            started = time.monotonic()
            for _ in range(5):
                await stub.ListOrderStatuses(
                    status.ListOrderStatusesRequest(), metadata=other, timeout=5
                )
            return time.monotonic() - started
    finally:
        for stream in streams:
            stream.cancel()
        for channel in channels:
            await channel.close()


def test_many_watches_of_one_customer_leave_others_status_calls_unaffected(
    edge: Platform,
) -> None:
    seconds = asyncio.run(_many_watches_then_status_calls(edge, 300))
    assert seconds < 3.0, f"5 status calls took {seconds:.1f}s next to 300 watches"
