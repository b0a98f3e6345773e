"""``ptctl run`` as a user runs it, in a subprocess on free ports: it leaves no child
behind however it is stopped or killed, brings a crashed child back by itself, runs
replicas on PostgreSQL behind the one gateway, and restarts a service's replicas one at
a time without a failed call."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc

from ptctl.envoy_admin import EnvoyAdmin
from ptctl.launcher import grpc_serving
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from tests.gateway_calls import GatewayCalls
from tests.helpers import bearer, metric_at, wait_for
from tests.launched import Launched, alive, processes_of, ptctl_run
from tests.load import CallLoad

UNLIMITED = {
    f"PT_RATE_LIMIT_{scope}{what}": "100000"
    for scope in ("", "CLIENT_", "ADDRESS_")
    for what in ("BURST", "PER_SECOND")
}
"""The gateway's rate limits out of the way of the load (they are tested elsewhere)."""
NOTHING_LEFT_WITHIN = 10.0
"""The bound for every child to be gone after the launcher was killed or stopped."""

log = logging.getLogger(__name__)


def assert_nothing_left(launched: Launched, pids: list[int]) -> None:
    wait_for(
        lambda: not processes_of(launched.var_dir) and not any(alive(p) for p in pids),
        timeout=NOTHING_LEFT_WITHIN,
        what=f"no process of {launched.var_dir} left",
    )


def token(launched: Launched, role: str, subject: str) -> str:
    result = launched.ptctl("token", "--role", role, "--subject", subject)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def place_order(launched: Launched, auth: tuple[tuple[str, str]]) -> str:
    address = launched.manifest()["gateway"]["address"]
    with grpc.insecure_channel(address) as channel:
        placed = order_grpc.OrderServiceStub(channel).PlaceOrder(
            order.PlaceOrderRequest(
                customer_name="Sam", class_name="Yoga", request_id=str(uuid.uuid4())
            ),
            metadata=auth,
            timeout=10,
        )
    return str(placed.order_id)


# -- no child left behind ------------------------------------------------------------------
def test_sigkill_of_ptctl_run_leaves_no_process_behind(tmp_path: Path) -> None:
    with ptctl_run(tmp_path / "var") as launched:
        children = list(launched.wait_up()["children"].values())
        assert len(children) == 7 and all(alive(pid) for pid in children)
        launched.process.kill()
        launched.process.wait()
        assert_nothing_left(launched, children)


def test_sigterm_during_start_up_stops_what_had_started(tmp_path: Path) -> None:
    with ptctl_run(tmp_path / "var") as launched:
        wait_for(
            lambda: len(processes_of(launched.var_dir)) >= 3,
            timeout=60,
            what="start-up under way: nats-server and services started",
        )
        launched.process.send_signal(signal.SIGTERM)
        assert launched.process.wait(timeout=60) == 0, launched.text()
        assert "PtPlatform is up" not in launched.text()
        assert_nothing_left(launched, [])


def test_a_second_signal_while_stopping_hurries_the_stop_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with ptctl_run(tmp_path / "var") as launched:
        children = list(launched.wait_up()["children"].values())
        launched.process.send_signal(signal.SIGINT)
        wait_for(lambda: "stopping ..." in launched.text(), what="the stop under way")
        launched.process.send_signal(signal.SIGTERM)
        assert launched.process.wait(timeout=60) == 0, launched.text()
        assert "stopped." in launched.text()
        assert not launched.manifest_file.exists()
        assert_nothing_left(launched, children)


# -- self-healing --------------------------------------------------------------------------
def test_a_service_killed_with_sigkill_comes_back_by_itself(tmp_path: Path) -> None:
    with ptctl_run(tmp_path / "var") as launched:
        before = launched.wait_up()
        auth = bearer(token(launched, "customer", "healing-customer"))
        place_order(launched, auth)
        crashed = before["children"]["order_svc"]
        os.kill(crashed, signal.SIGKILL)

        def restarted() -> int | None:
            pid = launched.manifest()["children"].get("order_svc")
            return pid if pid not in (None, crashed) else None

        again = wait_for(restarted, timeout=30, what="order_svc started again")
        address = before["services"]["order"][0]["address"]
        wait_for(lambda: grpc_serving(address), timeout=30, what="order_svc serving again")
        admin = EnvoyAdmin(Path(before["gateway"]["admin_socket"]))
        wait_for(admin.healthy, timeout=30, what="Envoy counting order_svc healthy again")
        wait_for(
            lambda: "order_svc is back" in launched.text(), timeout=30, what="the launcher says so"
        )
        assert place_order(launched, auth)
        text = launched.text()
        assert "order_svc exited (signal SIGKILL)" in text
        assert '"msg": "child exited, restarting", "child": "order_svc"' in text
        assert again is not None and alive(again) and not alive(crashed)


def test_a_killed_nats_server_and_envoy_come_back_and_the_platform_serves(
    tmp_path: Path,
) -> None:
    with ptctl_run(tmp_path / "var") as launched:
        before = launched.wait_up()
        auth = bearer(token(launched, "customer", "healing-customer"))
        admin = EnvoyAdmin(Path(before["gateway"]["admin_socket"]))
        for name in ("nats-server", "envoy"):
            os.kill(launched.manifest()["children"][name], signal.SIGKILL)
            back = f"{name} is back"
            wait_for(lambda: back in launched.text(), timeout=60, what=back)  # noqa: B023
        wait_for(admin.healthy, timeout=30, what="Envoy up, every upstream healthy")
        assert place_order(launched, auth)
        after = launched.manifest()["children"]
        assert after["nats-server"] != before["children"]["nats-server"]
        assert after["envoy"] != before["children"]["envoy"]


# -- replicas ------------------------------------------------------------------------------
def test_several_replicas_on_sqlite_are_refused_naming_the_fix(tmp_path: Path) -> None:
    with ptctl_run(tmp_path / "var", "--replicas", "order=2") as launched:
        assert launched.process.wait(timeout=60) == 2
        text = launched.text()
        assert "configuration error: order: 2 replicas need PostgreSQL" in text
        assert "PT_ORDER_DATABASE_URL" in text and "PT_DATABASE_SERVER_URL" in text
        assert not processes_of(launched.var_dir)


def test_two_order_replicas_on_postgresql_share_the_calls(
    tmp_path: Path, postgres_databases: Callable[[], str]
) -> None:
    environ = {"PT_ORDER_DATABASE_URL": postgres_databases()}
    with ptctl_run(tmp_path / "var", "--replicas", "order=2", environ=environ) as launched:
        replicas = launched.wait_up()["services"]["order"]
        assert [r["name"] for r in replicas] == ["order_svc", "order_svc-1"]
        auth = bearer(token(launched, "customer", "balanced-customer"))
        for _ in range(20):
            place_order(launched, auth)
        served = [
            metric_at(r["metrics_port"], "grpc_server_handled_total", grpc_method="PlaceOrder")
            for r in replicas
        ]
        assert sum(served) == 20
        assert all(count > 0 for count in served), f"Envoy did not balance: {served}"


# -- rolling restart -----------------------------------------------------------------------
def test_a_rolling_restart_of_every_service_under_load_fails_no_call(
    tmp_path: Path, postgres_databases: Callable[[], str]
) -> None:
    contexts = ("order", "manager", "trainer", "status")
    environ = {f"PT_{c.upper()}_DATABASE_URL": postgres_databases() for c in contexts}
    environ.update(UNLIMITED)
    replicas = ",".join(f"{c}=2" for c in contexts)
    with ptctl_run(tmp_path / "var", "--replicas", replicas, environ=environ) as launched:
        before = launched.wait_up()
        address = before["gateway"]["address"]
        with grpc.insecure_channel(address) as channel:
            calls = GatewayCalls(
                channel,
                f"http://{address}",
                token(launched, "customer", "rolling-customer"),
                token(launched, "manager", "rolling-manager"),
            )
            load = CallLoad(
                [
                    calls.place_order,
                    calls.get_order,
                    calls.list_statuses,
                    calls.list_trainers,
                    calls.list_schedules,
                    calls.register_trainer,
                ],
                threads=3,
            )
            with load:
                load.wait_for_calls(50)
                started = time.monotonic()
                result = launched.ptctl("restart", *contexts, timeout=600)
                took = time.monotonic() - started
            placed = {o.order_id for o in calls.orders_listed()}
        log.info(
            f"rolling restart of {len(contexts)}x2 replicas: {took:.1f}s,"
            f" {len(load.outcomes)} calls, {len(load.failures)} failed\n{result.stdout}"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("restarted (pid") == 8
        after = launched.manifest()["children"]
        assert all(after[name] != pid for name, pid in before["children"].items() if "_svc" in name)
        assert load.failures == [], f"{len(load.failures)} failed calls: {load.failures[:10]}"
        assert placed == {calls.first.order_id, *calls.placed.values()}, "each order made once"


def test_restart_names_what_is_wrong(tmp_path: Path) -> None:
    with ptctl_run(tmp_path / "var") as launched:
        nothing = launched.ptctl("restart", "order", environ={"PT_VAR_DIR": str(tmp_path)})
        assert nothing.returncode == 2
        assert f"restart refused: no platform running under {tmp_path}" in nothing.stderr
        unsupervised = tmp_path / "tests-platform"
        unsupervised.mkdir()
        (unsupervised / "platform.json").write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "supervised": False,
                    "gateway": {"address": "127.0.0.1:1", "admin_socket": "/nowhere"},
                    "nats": {"url": "nats://127.0.0.1:1"},
                    "services": {"order": [{"name": "order_svc", "address": "127.0.0.1:1"}]},
                }
            )
        )
        refused = launched.ptctl("restart", "order", environ={"PT_VAR_DIR": str(unsupervised)})
        assert refused.returncode == 2
        assert "is not supervised (not started by ptctl run)" in refused.stderr
        launched.wait_up()
        unknown = launched.ptctl("restart", "billing")
        assert unknown.returncode == 2
        assert "no service 'billing' runs here; one of manager, order, status, trainer" in (
            unknown.stderr
        )
