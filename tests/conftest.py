"""Fixtures that start real servers on free loopback ports and always stop them."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ptctl.keys import ensure_keys
from ptctl.launcher import ManagedProcess, Platform, PlatformConfig, binary, free_port, tcp_open
from ptkit.tokens import KeyFiles
from tests.helpers import wait_for
from tests.log_scan import tokens_in_logs

IN_CI = os.environ.get("CI") == "true"
"""Set by .ci/run. In CI every test must run: a skip is an error (see the hooks below)."""

POSTGRES_ADMIN_URL = os.environ.get(
    "PT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    return ensure_keys(tmp_path_factory.mktemp("jwt"))


class NatsServer:
    """A real nats-server with JetStream on a free port; restartable on the same store."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "nats-server",
            [
                binary("nats-server"),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(store),
            ],
            dict(os.environ),
            store / "nats.log",
        )

    def start(self) -> None:
        self.process.start()
        wait_for(lambda: tcp_open(self.port), timeout=15, what="nats-server listening")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    (tmp_path / "nats").mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _postgres_address() -> tuple[str, int]:
    """Host and port of the PostgreSQL server named by PT_TEST_POSTGRES_URL."""
    url = make_url(POSTGRES_ADMIN_URL)
    return url.host or "127.0.0.1", url.port or 5432


def _postgres_available() -> bool:
    try:
        with socket.create_connection(_postgres_address(), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Creates fresh PostgreSQL databases on demand, all dropped afterwards.
    Skipped (not on CI) without a server."""
    if not _postgres_available():
        host, port = _postgres_address()
        if IN_CI:
            pytest.fail(f"PostgreSQL on {host}:{port} is required when CI=true")
        pytest.skip(f"no PostgreSQL answers on {host}:{port}")
    import asyncio

    import asyncpg

    admin = POSTGRES_ADMIN_URL
    created: list[str] = []

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def create() -> str:
        name = f"pt_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return admin.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield create
    finally:
        for name in created:
            asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    """A fresh PostgreSQL database, dropped afterwards."""
    return postgres_databases()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a repository contract's units of work keep their rows: the kit's in-memory
    fake, or a fresh database (tests/repository_contract.py)."""
    if request.param == "memory":
        return "memory"
    return _database_url(request.param, request, tmp_path)


def _database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database URL per backend: a SQLite file, a fresh PostgreSQL database."""
    return _database_url(request.param, request, tmp_path)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With CI=true a skipped test is reported as failed: a missing tool or server in CI
    must not pass as "skipped". Expected failures (xfail) are left as they are."""
    report: pytest.TestReport = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped while CI=true (every test must run in CI): {_skip_reason(report)}"
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped as a whole (``pytest.skip(allow_module_level=True)``,
    ``importorskip``) fails the run in CI too."""
    report: pytest.CollectReport = yield
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped while CI=true (every test must run in CI): {_skip_reason(report)}"
        )
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--platform-contexts",
        default="",
        help="comma-separated contexts the e2e platform starts (default: every service)",
    )


@pytest.fixture(scope="session")
def platform(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Platform]:
    """The whole platform (nats-server, every service, Envoy), shared by the e2e tests."""
    chosen = [c for c in pytestconfig.getoption("--platform-contexts").split(",") if c]
    config = PlatformConfig.ephemeral(tmp_path_factory.mktemp("platform"), contexts=chosen or None)
    with Platform(config) as running:
        yield running


def fresh_platform(var_dir: Path, **kwargs: object) -> Platform:
    """A platform of its own, for tests that stop and restart parts of it."""
    return Platform(PlatformConfig.ephemeral(var_dir, **kwargs))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No bearer token in any log the run produced (tests/log_scan.py): the services',
    nats-server's and Envoy's logs, its access log included, under pytest's base
    temporary directory. A token found fails the run; the report shows only its start."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return  # the run made no temporary directory, so no logs either
    found = tokens_in_logs([factory.getbasetemp()])
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.section("bearer tokens in logs", sep="=", red=True)
        for finding in found:
            reporter.line(str(finding), red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
