"""The plaintext health port: what kubelet's gRPC probes reach when a service speaks TLS.

Real gRPC over loopback: a ServiceHost under mutual TLS (certificates from ptctl/tls.py)
with a health port. The TLS port refuses plaintext; the health port answers
grpc.health.v1 in plaintext, with the same statuses, and serves nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ptctl.launcher import free_port, grpc_serving
from ptctl.tls import LocalCa, ensure_tls
from ptkit.auth import JwtSettings, Role, TokenVerifier
from ptkit.config import ConfigError, Env
from ptkit.runtime import ServiceSettings
from ptkit.server import ServiceHost
from ptkit.tls import TlsFiles
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles, mint_token
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.helpers import bearer, eventually, service_process, wait_for

ORDER_SERVICE = "ptplatform.order.v1.OrderService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Orders(pb_grpc.OrderServiceServicer):
    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        return pb.Order(order_id=request.order_id)


@dataclass
class Running:
    ca: LocalCa
    port: int
    health_port: int
    stop: asyncio.Event


@pytest.fixture
async def running(tmp_path: Path, keys: KeyFiles) -> AsyncIterator[Running]:
    ca = ensure_tls(tmp_path / "tls", ("order",))
    files = TlsFiles.from_env(Env(ca.service_env("order")))
    assert files is not None
    port, health_port = free_port(), free_port()
    host = ServiceHost(
        name="order_svc",
        host="127.0.0.1",
        port=port,
        verifier=TokenVerifier(JwtSettings(keys.public_key, DEV_ISSUER, DEV_AUDIENCE)),
        services=[
            (ORDER_SERVICE, lambda s: pb_grpc.add_OrderServiceServicer_to_server(Orders(), s))
        ],
        grace_seconds=2.0,
        drain_delay_seconds=1.0,
        credentials=files.server_credentials(),
        health_port=health_port,
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(host.run(stop))
    try:
        await asyncio.wait_for(host.started.wait(), 10)
        yield Running(ca, port, health_port, stop)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def check(channel: grpc.aio.Channel, service: str = "") -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return response.status


async def test_the_tls_port_refuses_plaintext_and_serves_a_client_certificate(
    running: Running, keys: KeyFiles
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await check(plaintext)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    credentials = running.ca.client_credentials("envoy")
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", credentials) as mutual:
        order = await pb_grpc.OrderServiceStub(mutual).GetOrder(
            pb.GetOrderRequest(order_id="o-1"),
            metadata=bearer(mint_token(keys, Role.MANAGER, "m-1")),
            timeout=5,
        )
        assert order.order_id == "o-1"


async def test_the_health_port_answers_serving_in_plaintext_and_nothing_else(
    running: Running,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.health_port}") as probe:
        assert await check(probe) == SERVING
        assert await check(probe, ORDER_SERVICE) == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await check(probe, "ptplatform.nowhere.v1.Nothing")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as order:
            await pb_grpc.OrderServiceStub(probe).GetOrder(
                pb.GetOrderRequest(order_id="o-1"), timeout=5
            )
        assert order.value.code() == grpc.StatusCode.UNIMPLEMENTED
        reflection = reflection_pb2_grpc.ServerReflectionStub(probe)
        with pytest.raises(grpc.aio.AioRpcError) as listed:
            async for _ in reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            ):
                pass
        assert listed.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_the_health_port_reports_not_serving_once_shutdown_starts(running: Running) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.health_port}") as probe:
        assert await check(probe) == SERVING
        running.stop.set()

        async def not_serving() -> bool:
            return await check(probe) == NOT_SERVING

        await eventually(not_serving, timeout=2, what="health port NOT_SERVING")


def test_a_service_configured_like_its_deployment_is_probed_on_its_health_port(
    keys: KeyFiles, tmp_path: Path
) -> None:
    """order_svc as a process, with PT_TLS_* and PT_ORDER_HEALTH_PORT as in the cluster."""
    ca = ensure_tls(tmp_path / "tls", ("order",))
    port, health_port = free_port(), free_port()
    environ = {
        **ca.service_env("order"),
        "PT_ORDER_PORT": str(port),
        "PT_ORDER_HEALTH_PORT": str(health_port),
    }
    with service_process("order", keys, tmp_path, environ) as process:
        health = f"127.0.0.1:{health_port}"
        wait_for(lambda: grpc_serving(health), timeout=20, what="order_svc's health port")
        assert grpc_serving(f"127.0.0.1:{port}", ca.client_credentials("envoy"))
        assert not grpc_serving(f"127.0.0.1:{port}"), "the gRPC port answered plaintext"
        process.terminate()
        assert process.wait(timeout=15) == 0
    assert process.stderr is not None
    assert f'"health_port": {health_port}' in process.stderr.read()


def test_a_health_port_equal_to_the_grpc_port_is_a_configuration_error(keys: KeyFiles) -> None:
    env = Env(
        {
            "PT_JWT_PUBLIC_KEY_FILE": str(keys.public_key),
            "PT_ORDER_PORT": "50051",
            "PT_ORDER_HEALTH_PORT": "50051",
        }
    )
    with pytest.raises(ConfigError, match="PT_ORDER_HEALTH_PORT=50051 is PT_ORDER_PORT too"):
        ServiceSettings.from_env("order", 50051, env)
