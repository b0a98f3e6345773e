"""500 WatchNotifications streams from one customer leave everyone else served.

status_svc caps the watches one caller holds (PT_STATUS_MAX_WATCHES_PER_CALLER, 4 by
default) and a replica holds (PT_STATUS_MAX_WATCHES); the rest are refused at once with
RESOURCE_EXHAUSTED TOO_MANY_WATCHES. And the watches it keeps open share one read of the
notifications table, so even 500 open watches cost status_svc next to nothing and leave
the unary calls their database connection: the second test opens 500 straight at
status_svc's port (125 customers, 4 each; the gateway's own stream limits are not what it
measures). With one poll per watch (before), 500 idle watches kept status_svc 70 % busy.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_status import rpc_status

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from tests.conftest import fresh_platform
from tests.helpers import bearer
from tests.rpc_details import Refusal, refusal_from

WATCHES = 500
PER_CALLER = 4
UNARY_DEADLINE_S = 2.0
CONNECTIONS = 10
GATEWAY_WAVE = 50
IDLE_WINDOW_S = 3.0
MAX_IDLE_CPU_SHARE = 0.25
"""500 watches waiting for notifications cost status_svc at most this share of a core
(one shared poll of the notifications table, not 500)."""
"""The watches are spread over this many HTTP/2 connections, as many clients would."""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of its own (its watch counts are this module's), with the default cap
    per caller, room for 500 watches in all, and no gateway rate limit (500 calls at
    once are what is tested, not the rate limit)."""
    gateway = GatewaySettings(rate_limit=RateLimitSettings.unlimited())
    service_env = {"PT_STATUS_MAX_WATCHES": str(WATCHES + 100)}
    with fresh_platform(
        tmp_path_factory.mktemp("watch-limits"), service_env=service_env, gateway=gateway
    ) as running:
        yield running


@asynccontextmanager
async def channels(address: str) -> AsyncIterator[list[grpc.aio.Channel]]:
    opened = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS)
    ]
    try:
        yield opened
    finally:
        for channel in opened:
            await channel.close()


async def open_watches(
    opened: list[grpc.aio.Channel], tokens: list[str], wave: int = WATCHES
) -> tuple[list[grpc.aio.UnaryStreamCall], list[grpc.aio.UnaryStreamCall]]:
    """One watch per token, ``wave`` at a time; (the watches still open after a while,
    the refused ones)."""
    if len(tokens) > wave:
        first = await open_watches(opened, tokens[:wave], wave)
        rest = await open_watches(opened, tokens[wave:], wave)
        return first[0] + rest[0], first[1] + rest[1]
    calls = [
        status_grpc.StatusServiceStub(opened[n % len(opened)]).WatchNotifications(
            status.WatchNotificationsRequest(), metadata=bearer(token)
        )
        for n, token in enumerate(tokens)
    ]

    async def ended(call: grpc.aio.UnaryStreamCall) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(call.code()), 5)
        except TimeoutError:
            return False
        return True

    done = await asyncio.gather(*(ended(call) for call in calls))
    return (
        [c for c, d in zip(calls, done, strict=True) if not d],
        [c for c, d in zip(calls, done, strict=True) if d],
    )


async def refusal_of_call(call: grpc.aio.UnaryStreamCall) -> Refusal:
    status_ = await rpc_status.aio.from_call(call)
    assert status_ is not None, (await call.code(), await call.details())
    return refusal_from(status_, await call.code())


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_share(pid: int | None, seconds: float) -> float:
    """The share of one core the process used over the next ``seconds``."""
    assert pid is not None
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)  # the measuring window, not a wait for a condition
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


async def unary_calls_of_another_customer(platform: Platform, address: str) -> float:
    """Bob's status calls, each within its deadline; the slowest one's seconds."""
    bob = bearer(platform.token("customer", f"bob-{uuid.uuid4().hex[:6]}"))
    slowest = 0.0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = status_grpc.StatusServiceStub(channel)
        for _ in range(10):
            started = time.monotonic()
            await stub.ListNotifications(
                status.ListNotificationsRequest(), metadata=bob, timeout=UNARY_DEADLINE_S
            )
            await stub.ListClassResults(
                status.ListClassResultsRequest(), metadata=bob, timeout=UNARY_DEADLINE_S
            )
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await stub.GetOrderStatus(
                    status.GetOrderStatusRequest(order_id=str(uuid.uuid4())),
                    metadata=bob,
                    timeout=UNARY_DEADLINE_S,
                )
            assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
            slowest = max(slowest, time.monotonic() - started)
    return slowest


async def test_500_watches_of_one_customer_get_4_and_leave_others_served(
    platform: Platform,
) -> None:
    alice = platform.token("customer", "alice-watches")
    async with channels(platform.gateway_address) as opened:
        # in waves below the gateway's pending-request breaker (64): what refuses the
        # watches here is status_svc's cap, not Envoy's overflow
        open_, refused = await open_watches(opened, [alice] * WATCHES, wave=GATEWAY_WAVE)
        try:
            assert len(open_) == PER_CALLER
            refusals = {
                (r.code, r.info.reason, r.info.metadata["scope"])
                for r in [await refusal_of_call(call) for call in refused]
            }
            assert refusals == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_WATCHES", "caller")}
            slowest = await unary_calls_of_another_customer(platform, platform.gateway_address)
            assert slowest < UNARY_DEADLINE_S
            # another customer may still watch
            (bob_watch,), _ = await open_watches(opened, [platform.token("customer", "bob-w")])
            bob_watch.cancel()
        finally:
            for call in open_:
                call.cancel()


async def test_500_open_watches_leave_the_unary_calls_their_database(
    platform: Platform,
) -> None:
    customers = [f"crowd-{n}" for n in range(WATCHES // PER_CALLER)]
    tokens = [token for c in customers for token in [platform.token("customer", c)] * PER_CALLER]
    address = platform.service_address("status")
    async with channels(address) as opened:
        open_, refused = await open_watches(opened, tokens)
        try:
            assert (len(open_), len(refused)) == (WATCHES, 0)
            slowest = await unary_calls_of_another_customer(platform, address)
            assert slowest < UNARY_DEADLINE_S
            busy = await cpu_share(platform.services["status"][0].process.pid, IDLE_WINDOW_S)
            assert busy < MAX_IDLE_CPU_SHARE, f"500 idle watches keep status_svc {busy:.0%} busy"
        finally:
            for call in open_:
                call.cancel()
