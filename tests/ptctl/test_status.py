"""``ptctl status`` against real platforms, run as a user runs it: a subprocess reading
the var dir's platform.json."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ptctl.launcher import PLATFORM_FILE, Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.conftest import fresh_platform
from tests.helpers import bearer, wait_for

OUTBOX_CONTEXTS = ("order", "manager", "trainer")


def ptctl_status(var_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptctl.cli", "status", "--var-dir", str(var_dir), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )


def status_json(var_dir: Path) -> tuple[int, dict[str, Any]]:
    """The exit code and the document of ``ptctl status --json``."""
    result = ptctl_status(var_dir, "--json", "--timeout", "2")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def once_healthy(var_dir: Path, what: str, timeout: float = 30.0) -> dict[str, Any]:
    """The document of the first ``ptctl status --json`` that exits 0 with the consumers
    of every replica reported (right after a start the services read JetStream's
    consumer info once connected, then every 5 s)."""

    def reported(document: dict[str, Any]) -> bool:
        replicas = [r for rs in document["services"].values() for r in rs]
        return all(replica["consumers"] for replica in replicas)

    _, document = wait_for(
        lambda: (found := status_json(var_dir))[0] == 0 and reported(found[1]) and found,
        timeout=timeout,
        interval=0.5,
        what=what,
    )
    return document


def order_backlog(document: dict[str, Any]) -> int | None:
    outbox = document["services"]["order"][0]["outbox"]
    return None if outbox is None else int(outbox["backlog"])


@pytest.fixture
def own_platform(tmp_path: Path) -> Iterator[Platform]:
    """A platform of its own: the test breaks it."""
    with fresh_platform(tmp_path / "platform") as running:
        yield running


def test_status_shows_every_part_of_a_healthy_platform(platform: Platform) -> None:
    document = once_healthy(platform.var_dir, "ptctl status exits 0")
    assert document["healthy"] is True and document["problems"] == []
    assert document["gateway"]["healthy"] and document["gateway"]["live"]
    assert document["gateway"]["address"] == platform.gateway_address
    nats = document["nats"]
    assert nats["reachable"] and nats["healthy"]
    assert nats["event_stream"] == "PT_EVENTS"
    assert isinstance(nats["events"], int) and isinstance(nats["dead_letters"], int)
    assert set(document["services"]) == set(platform.services)
    for context, replicas in document["services"].items():
        assert len(replicas) == len(platform.services[context])
        for index, replica in enumerate(replicas):
            assert replica["address"] == platform.service_address(context, index)
            assert replica["health"] == "SERVING"
            assert replica["version"]
            assert replica["uptime_seconds"] >= 0
            assert replica["nats_connected"] is True
            streams = {(c["durable"], c["stream"]) for c in replica["consumers"]}
            assert streams == {(f"{context}_svc", "PT_EVENTS"), (f"{context}_svc", "PT_REDRIVE")}
            assert all(
                isinstance(c["pending"], int) and isinstance(c["ack_pending"], int)
                for c in replica["consumers"]
            )
            assert isinstance(replica["dead_letters_total"], int)
            if context in OUTBOX_CONTEXTS:
                assert isinstance(replica["outbox"]["backlog"], int)
            else:
                assert replica["outbox"] is None  # status_svc keeps no outbox

    text = ptctl_status(platform.var_dir)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "every part healthy" in text.stdout
    for processes in platform.services.values():
        for process in processes:
            assert process.name in text.stdout


def test_status_shows_the_outbox_growing_while_nats_is_down_and_draining_after(
    own_platform: Platform,
) -> None:
    var_dir = own_platform.var_dir
    once_healthy(var_dir, "ptctl status exits 0 before the outage")
    own_platform.stop_nats()
    placed = 3
    with grpc.insecure_channel(own_platform.gateway_address) as channel:
        orders = pb_grpc.OrderServiceStub(channel)
        auth = bearer(own_platform.token("customer", f"cust-{uuid.uuid4().hex[:8]}"))
        for number in range(placed):
            orders.PlaceOrder(
                pb.PlaceOrderRequest(
                    customer_name="Ada", class_name=f"Yoga {number}", request_id=str(uuid.uuid4())
                ),
                metadata=auth,
            )

    def degraded() -> tuple[int, dict[str, Any]] | None:
        code, document = status_json(var_dir)
        replicas = [r for rs in document["services"].values() for r in rs]
        if (
            order_backlog(document) == placed
            and not document["nats"]["reachable"]
            and all(r["nats_connected"] is False for r in replicas)
        ):
            return code, document
        return None

    # the relay recounts its backlog at most once a second, backing off to 5 s without NATS
    code, document = wait_for(degraded, timeout=60, interval=0.5, what="the outage shown")
    assert code == 1
    assert document["healthy"] is False
    assert any(problem.startswith("NATS") for problem in document["problems"])
    assert document["services"]["order"][0]["health"] == "SERVING"  # it still takes orders
    assert document["services"]["order"][0]["outbox"]["oldest_age_seconds"] > 0

    own_platform.start_nats()
    _, document = wait_for(
        lambda: (found := status_json(var_dir))[0] == 0 and order_backlog(found[1]) == 0 and found,
        timeout=60,
        interval=0.5,
        what="the outbox drained and every part healthy again",
    )
    assert document["nats"]["events"] >= placed


def test_status_checks_a_tls_platform_with_its_client_certificate_until_it_stops(
    tmp_path: Path,
) -> None:
    platform = fresh_platform(tmp_path / "platform", tls=True)
    with platform:
        described = json.loads((platform.var_dir / PLATFORM_FILE).read_text())
        assert (platform.var_dir / PLATFORM_FILE).stat().st_mode & 0o777 == 0o600
        assert described["gateway"]["address"] == platform.gateway_address
        assert described["nats"]["url"] == platform.nats_url
        document = once_healthy(platform.var_dir, "ptctl status exits 0 under TLS")
        replicas = [r for rs in document["services"].values() for r in rs]
        assert replicas and all(r["health"] == "SERVING" for r in replicas)
    assert not (platform.var_dir / PLATFORM_FILE).exists()
    result = ptctl_status(platform.var_dir)
    assert result.returncode == 2
    assert f"no platform running under {platform.var_dir}" in result.stderr


def test_a_platform_file_left_by_a_dead_launcher_counts_as_nothing_running(
    tmp_path: Path,
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    (tmp_path / PLATFORM_FILE).write_text(json.dumps({"pid": int(gone.stdout)}))
    result = ptctl_status(tmp_path)
    assert result.returncode == 2
    assert "has exited" in result.stderr
