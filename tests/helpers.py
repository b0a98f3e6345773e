"""Helpers for tests: polling with a deadline, tokens, gRPC metadata."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

import grpc
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ptctl.launcher import Platform, binary, free_port
from ptkit.auth import JwtSettings, TokenVerifier
from ptkit.migrations import upgrade_schema
from ptkit.server import Registrar, ServiceHost
from ptkit.sql import MessagingTables, create_engine
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles
from ptplatform.events.v1 import events_pb2

T = TypeVar("T")


@contextmanager
def service_process(
    context: str, keys: KeyFiles, var_dir: Path, environ: Mapping[str, str]
) -> Iterator[subprocess.Popen[str]]:
    """``python -m <context>_svc`` on its own, with ``environ``, stderr captured, killed
    if it still runs at the end. Nobody listens at its NATS URL: it serves all the same."""
    env = {
        **os.environ,
        "PT_JWT_PUBLIC_KEY_FILE": str(keys.public_key),
        "PT_VAR_DIR": str(var_dir),
        "PT_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        **environ,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", f"{context}_svc"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(
    check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")


async def eventually(
    check: Callable[[], Awaitable[T]],
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Async ``wait_for``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")


def bearer(token: str) -> tuple[tuple[str, str]]:
    """gRPC call metadata carrying a bearer token."""
    return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def database(url: str, metadata: MetaData) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` with the service's schema migrated to head, as a service
    start would; disposed afterwards."""
    engine = create_engine(url)
    try:
        await upgrade_schema(engine, metadata)
        yield engine
    finally:
        await engine.dispose()


async def outbox_envelopes(
    engine: AsyncEngine, tables: MessagingTables
) -> list[events_pb2.EventEnvelope]:
    """The events in a service's outbox, oldest first."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(tables.outbox).order_by(tables.outbox.c.seq))).all()
    return [events_pb2.EventEnvelope.FromString(row.payload) for row in rows]


@asynccontextmanager
async def serving(
    registration: tuple[str, Registrar], keys: KeyFiles, name: str = "test_svc"
) -> AsyncIterator[grpc.aio.Channel]:
    """One servicer on a real gRPC server (the kit's ServiceHost: authentication, error
    codes) on a free loopback port; a channel to it. The server stops afterwards."""
    port = free_port()
    host = ServiceHost(
        name=name,
        host="127.0.0.1",
        port=port,
        verifier=TokenVerifier(JwtSettings(keys.public_key, DEV_ISSUER, DEV_AUDIENCE)),
        services=[registration],
        grace_seconds=1.0,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(host.run(stop))
    await asyncio.wait_for(host.started.wait(), timeout=10)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        stop.set()
        await running


def metric(platform: Platform, context: str, name: str, replica: int = 0, **labels: str) -> float:
    """The sum of the samples ``name`` with ``labels`` on one service replica's /metrics."""
    return metric_at(platform.config.metrics_ports[context][replica], name, **labels)


def metric_at(port: int, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` with ``labels`` on the /metrics at ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def assert_envoy_accepts(config: Path) -> None:
    """``envoy --mode validate`` loads this configuration (descriptor, files and all)."""
    result = subprocess.run(
        [binary("envoy"), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def not_found_is_none(call: Callable[[], T]) -> Callable[[], T | None]:
    """``call``, with NOT_FOUND (a read model whose event has not arrived yet) as None:
    for :func:`wait_for`."""

    def found() -> T | None:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    return found
