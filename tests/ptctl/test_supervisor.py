"""The supervisor's rules and the replicas' configuration, without a platform: the
backoff, how an exit is described, ``--replicas`` parsing, which database replicas get,
and a supervised child (a real process) that comes back after it crashed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ptctl.launcher import ManagedProcess, PlatformConfig, StartupError
from ptctl.replicas import ensure_databases, parse_replicas, server_database
from ptctl.supervisor import Backoff, Supervisor, describe_exit, restart_request
from ptkit.config import ConfigError, Env
from tests.helpers import wait_for

CONTEXTS = ["order", "manager", "trainer", "status"]
POSTGRES = "postgresql://pt@127.0.0.1:5432/orders"


def test_the_restart_delay_doubles_from_half_a_second_up_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_an_exit_is_described_by_its_code_or_its_signal() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"


def test_replicas_are_read_per_context() -> None:
    assert parse_replicas("order=2, status=3", CONTEXTS) == {"order": 2, "status": 3}
    assert parse_replicas("", CONTEXTS) == {}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("billing=2", "unknown context 'billing'; one of order, manager, trainer, status"),
        ("order=two", "the count must be a whole number from 1 to 16"),
        ("order=0", "the count must be a whole number from 1 to 16"),
        ("order", "expected CONTEXT=COUNT"),
    ],
)
def test_bad_replicas_are_refused_naming_the_entry(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_replicas(text, CONTEXTS)


def test_replicas_share_the_configured_postgresql_database_and_take_ports_of_their_own(
    tmp_path: Path,
) -> None:
    env = Env({"PT_ORDER_DATABASE_URL": POSTGRES, "PT_ORDER_PORT": "50051"})
    config = PlatformConfig.defaults(tmp_path, env, {"order": 2})
    assert config.database_urls["order"] == [POSTGRES, POSTGRES]
    assert config.create_databases == []
    first, second = config.service_ports["order"]
    assert first == 50051 and second != first
    assert len(set(config.metrics_ports["order"])) == 2


def test_replicas_get_a_database_of_their_own_on_the_database_server(tmp_path: Path) -> None:
    env = Env({"PT_DATABASE_SERVER_URL": "postgresql://pt@127.0.0.1:5432/"})
    config = PlatformConfig.defaults(tmp_path, env, {"status": 2})
    url = "postgresql://pt@127.0.0.1:5432/ptplatform_status"
    assert config.database_urls == {"status": [url, url]}
    assert config.create_databases == [url]
    assert server_database("postgresql+psycopg://h:6543/x", "order") == (
        "postgresql+psycopg://h:6543/ptplatform_order"
    )


def test_several_replicas_on_sqlite_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trainer: 2 replicas need PostgreSQL") as refused:
        PlatformConfig.defaults(tmp_path, Env({}), {"trainer": 2})
    assert "PT_TRAINER_DATABASE_URL=postgresql://" in str(refused.value)
    assert "PT_DATABASE_SERVER_URL=postgresql://127.0.0.1:5432/" in str(refused.value)
    sqlite = Env({"PT_TRAINER_DATABASE_URL": f"sqlite:///{tmp_path}/t.db"})
    with pytest.raises(ConfigError, match="trainer: 2 replicas need PostgreSQL"):
        PlatformConfig.defaults(tmp_path, sqlite, {"trainer": 2})


def test_the_nats_cluster_defaults_to_one_server(tmp_path: Path) -> None:
    assert PlatformConfig(var_dir=tmp_path).nats_cluster == 1


class OneChild:
    """A stand-in for Platform with one real child: what the supervisor calls."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.child = ManagedProcess(
            "sleeper",
            [sys.executable, "-c", "import time; time.sleep(60)"],
            dict(os.environ),
            var_dir / "sleeper.log",
        )
        self.manifests = 0
        self.refuse_launch = False
        self.supervised = False

    def processes(self) -> list[ManagedProcess]:
        return [self.child]

    def launch(self, process: ManagedProcess) -> None:
        if self.refuse_launch:
            raise StartupError("port taken")
        process.start()

    def ready(self, process: ManagedProcess) -> bool:
        return process.running

    def write_manifest(self) -> None:
        self.manifests += 1


@pytest.fixture
def supervised(tmp_path: Path) -> Any:
    platform = OneChild(tmp_path)
    platform.child.start()
    lines: list[str] = []
    supervisor = Supervisor(
        platform,  # type: ignore[arg-type]
        Backoff(first=0.1, most=0.4, stable=30),
        interval=0.02,
        announce=lines.append,
    ).start()
    try:
        yield platform, supervisor, lines
    finally:
        supervisor.stop()
        platform.child.stop()
        supervisor.release()


def test_a_crashed_child_is_started_again_and_announced(supervised: Any) -> None:
    platform, _, lines = supervised
    crashed = platform.child.pid
    os.kill(crashed, signal.SIGKILL)
    wait_for(lambda: platform.child.pid not in (None, crashed), what="a new sleeper")
    wait_for(lambda: any("is back" in line for line in lines), what="the announcement")
    assert lines[0] == "sleeper exited (signal SIGKILL) after " + lines[0].split(" after ")[1]
    assert "restart in 0.1s" in lines[0]
    assert platform.supervised and platform.manifests == 2  # at start, after the restart


def test_a_requested_restart_comes_at_once_and_a_failed_launch_is_retried(
    supervised: Any,
) -> None:
    platform, _, lines = supervised
    restart_request(platform.var_dir, "sleeper").touch()
    platform.refuse_launch = True
    os.kill(platform.child.pid, signal.SIGTERM)
    wait_for(lambda: len(lines) >= 3, what="a refused launch, then another")
    assert "(restart requested)" in lines[0] and "restart in 0.0s" in lines[0]
    assert "did not start (port taken)" in lines[1]
    assert not restart_request(platform.var_dir, "sleeper").exists()
    platform.refuse_launch = False
    wait_for(lambda: platform.child.running, what="the sleeper started once its port was free")


def test_nothing_is_restarted_once_the_supervisor_stopped(supervised: Any) -> None:
    platform, supervisor, lines = supervised
    supervisor.stop()
    assert not supervisor.supervising
    platform.child.kill()
    assert platform.child.process is None and lines == []
    assert supervisor.alive, "its thread stays until released: its children die with it"


def test_the_database_a_replicated_context_gets_on_the_server_is_created_once(
    postgres_databases: Callable[[], str],
) -> None:
    server = postgres_databases().rsplit("/", 1)[0] + "/"
    url = server_database(server, f"test_{uuid.uuid4().hex[:8]}")
    try:
        ensure_databases([url])
        ensure_databases([url])  # already there: left as it is
        assert asyncio.run(_exists(url))
    finally:
        asyncio.run(_drop(url))


async def _admin(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")


async def _exists(url: str) -> bool:
    connection = await _admin(url)
    try:
        name = url.rsplit("/", 1)[1]
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", name))
    finally:
        await connection.close()


async def _drop(url: str) -> None:
    connection = await _admin(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await connection.close()
