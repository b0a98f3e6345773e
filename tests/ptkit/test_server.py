"""The shared service kit: configuration errors, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from ptctl.launcher import free_port
from ptkit.auth import JwtSettings, Role, TokenVerifier
from ptkit.server import ServiceHost
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.helpers import bearer, eventually, service_process


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PT_ORDER_PORT", "eighty", "PT_ORDER_PORT='eighty' is invalid: expected an integer"),
        ("PT_ORDER_PORT", "70000", "PT_ORDER_PORT=70000 is out of range"),
        ("PT_ORDER_DATABASE_URL", "mysql://x", "PT_ORDER_DATABASE_URL='mysql://x' is invalid"),
        ("PT_LOG_LEVEL", "LOUD", "PT_LOG_LEVEL='LOUD' is invalid: expected one of"),
        (
            "PT_JWT_PUBLIC_KEY_FILE",
            "/nowhere/key.pem",
            "PT_JWT_PUBLIC_KEY_FILE='/nowhere/key.pem' does not exist",
        ),
    ],
)
def test_a_bad_setting_stops_the_service_with_one_line_naming_it(
    keys: KeyFiles, variable: str, value: str, expected: str
) -> None:
    env = {**os.environ, "PT_JWT_PUBLIC_KEY_FILE": str(keys.public_key), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "order_svc"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    assert expected in lines[0]


class SlowOrders(pb_grpc.OrderServiceServicer):
    """A servicer whose calls take a while, to observe draining."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        self.started.set()
        await asyncio.sleep(1.0)
        return pb.Order(order_id=request.order_id)


def slow_host(keys: KeyFiles, port: int, servicer: SlowOrders) -> ServiceHost:
    return ServiceHost(
        name="test",
        host="127.0.0.1",
        port=port,
        verifier=TokenVerifier(
            JwtSettings(keys.public_key, "https://auth.ptplatform.local", "ptplatform")
        ),
        services=[
            (
                "ptplatform.order.v1.OrderService",
                lambda s: pb_grpc.add_OrderServiceServicer_to_server(servicer, s),
            )
        ],
        grace_seconds=5.0,
        drain_delay_seconds=0.5,
    )


async def test_shutdown_reports_not_serving_then_finishes_in_flight_calls(keys: KeyFiles) -> None:
    port = free_port()
    servicer = SlowOrders()
    host = slow_host(keys, port, servicer)
    stop = asyncio.Event()
    serving = asyncio.create_task(host.run(stop))
    try:
        await asyncio.wait_for(host.started.wait(), 10)
        token = mint_token(keys, Role.MANAGER, "m-1")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            serving_now = await health.Check(health_pb2.HealthCheckRequest())
            assert serving_now.status == health_pb2.HealthCheckResponse.SERVING
            stub = pb_grpc.OrderServiceStub(channel)

            async def slow_call() -> pb.Order:
                return await stub.GetOrder(
                    pb.GetOrderRequest(order_id="o-1"), metadata=bearer(token)
                )

            in_flight = asyncio.create_task(slow_call())
            await asyncio.wait_for(servicer.started.wait(), 5)
            stop.set()

            async def not_serving() -> bool:
                response = await health.Check(health_pb2.HealthCheckRequest())
                return response.status == health_pb2.HealthCheckResponse.NOT_SERVING

            await eventually(not_serving, timeout=2, what="health NOT_SERVING")
            assert (await in_flight).order_id == "o-1"
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


def test_the_service_exits_cleanly_on_sigterm(keys: KeyFiles, tmp_path: Path) -> None:
    port = free_port()
    with service_process("order", keys, tmp_path, {"PT_ORDER_PORT": str(port)}) as process:
        from ptctl.launcher import grpc_serving
        from tests.helpers import wait_for

        wait_for(lambda: grpc_serving(f"127.0.0.1:{port}"), timeout=20, what="order_svc serving")
        process.terminate()
        assert process.wait(timeout=15) == 0
    assert process.stderr is not None
    assert '"msg": "stopped"' in process.stderr.read()


async def test_a_unary_call_its_client_gave_up_on_is_counted_as_canceled(keys: KeyFiles) -> None:
    """A call the gateway abandons (its per-try timeout) or whose client leaves ends in
    the counters too, as Canceled, not only in the latency histogram."""
    port = free_port()
    servicer = SlowOrders()
    stop = asyncio.Event()
    serving = asyncio.create_task(slow_host(keys, port, servicer).run(stop))
    labels = {
        "grpc_type": "unary",
        "grpc_service": "ptplatform.order.v1.OrderService",
        "grpc_method": "GetOrder",
        "grpc_code": "Canceled",
    }
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0
    try:
        await asyncio.wait_for(servicer_host_started(serving, port), 10)
        token = mint_token(keys, Role.MANAGER, "m-1")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.OrderServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as gave_up:
                await stub.GetOrder(
                    pb.GetOrderRequest(order_id="o-1"), metadata=bearer(token), timeout=0.3
                )
            assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

            async def counted() -> bool:
                after = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0
                return after == before + 1

            await eventually(counted, timeout=5, what="the abandoned call counted")
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def servicer_host_started(serving: asyncio.Task[None], port: int) -> None:
    """Until the host answers its health check (or its task ends)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not serving.done():
            try:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                return
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
