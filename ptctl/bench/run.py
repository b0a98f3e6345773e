"""The bench's run: start the platform and the no-op gateway, measure, stop (the
measurements are described in :mod:`ptctl.bench`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ptctl.bench import procstat, profile, propagation, report
from ptctl.bench.flow import whole_flows
from ptctl.bench.load import TOKEN_ENV
from ptctl.bench.noop_gateway import NoopGateway
from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import ROOT, Platform, PlatformConfig
from ptctl.nats_cluster import sync_interval
from ptctl.otlp_sink import OtlpSink
from ptkit.config import Env

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONCURRENCIES = (1, 16, 64)
CPU_CONCURRENCY = 16
SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Plan:
    """How long and how much each measurement runs."""

    run_s: float
    warmup_s: float
    rates: tuple[int, ...]
    rate_s: float
    flows: int
    in_flight: int = 32

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(run_s=2.0, warmup_s=0.5, rates=(50, 200), rate_s=2.0, flows=50)
        return cls(run_s=10.0, warmup_s=2.0, rates=(50, 200, 500), rate_s=10.0, flows=1000)


@dataclass
class BenchOptions:
    quick: bool = False
    postgres: bool = False
    out: Path = Path("var/bench")
    service_env: dict[str, str] = field(default_factory=dict)
    profile: bool = False
    tracing: bool = False
    """Tracing on (PT_TRACING=otlp), exporting to an OTLP receiver the bench runs."""


def git_commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip()


@contextmanager
def postgres_databases(contexts: list[str]) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """One fresh database per service on the local PostgreSQL, dropped afterwards; with
    the tag in all their names (which their backends' command lines show)."""
    import asyncpg

    async def run(*statements: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    tag = f"ptbench_{uuid.uuid4().hex[:8]}"
    names = {context: f"{tag}_{context}" for context in contexts}
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        for name in names.values():
            asyncio.run(run(f'CREATE DATABASE "{name}"'))
        yield tag, {context: [f"{base}/{name}"] for context, name in names.items()}
    finally:
        asyncio.run(run(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values())))


def platform_pids(platform: Platform) -> dict[str, int]:
    """The platform's processes by name: every service replica, Envoy, nats-server."""
    processes = [p for replicas in platform.services.values() for p in replicas]
    processes += [platform.envoy, *platform.nats_nodes]
    return {p.name: p.process.pid for p in processes if p.process is not None}


class Bench:
    """The measurements, each against the running platform and no-op gateway."""

    def __init__(
        self,
        platform: Platform,
        noop: NoopGateway,
        plan: Plan,
        bar: tqdm,
        database_marker: str = "",
    ) -> None:
        self.platform = platform
        self.noop = noop
        self.plan = plan
        self.bar = bar
        self.pids = platform_pids(platform)
        self.database_marker = database_marker
        self.env = {**os.environ, TOKEN_ENV: platform.token("customer", "bench-customer", 7200)}
        urls = platform.config.database_urls.get("status")
        self.status_db = urls[0] if urls else f"sqlite:///{platform.var_dir / 'status_svc.db'}"

    def step(self, what: str) -> None:
        self.bar.set_description(what)

    def done(self) -> None:
        self.bar.update()

    def closed(self, target: str, concurrency: int, run_s: float, warmup_s: float) -> dict:
        argv = [sys.executable, "-m", "ptctl.bench.load", "closed", "--target", target]
        argv += ["--concurrency", str(concurrency), "--duration", str(run_s)]
        argv += ["--warmup", str(warmup_s)]
        found = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=run_s + warmup_s + 120
        )
        if found.returncode != 0:
            raise RuntimeError(f"load process failed (rc {found.returncode}):\n{found.stderr}")
        result: dict[str, Any] = json.loads(found.stdout)
        return result

    def place_order(self) -> tuple[list[dict], dict]:
        plan, rows, cpu = self.plan, [], {}
        for concurrency in CONCURRENCIES:
            self.step(f"PlaceOrder x{concurrency} platform")
            before = self.cpu()
            mine = self.closed(
                self.platform.gateway_address, concurrency, plan.run_s, plan.warmup_s
            )
            if concurrency == CPU_CONCURRENCY:
                cpu = self.cpu_per_order(before, mine)
            self.done()
            self.step(f"PlaceOrder x{concurrency} no-op")
            theirs = self.closed(self.noop.address, concurrency, plan.run_s, plan.warmup_s)
            self.done()
            ratio = mine["rps"] / theirs["rps"] if theirs["rps"] else 0.0
            rows.append(
                {"concurrency": concurrency, "platform": mine, "noop": theirs, "ratio": ratio}
            )
        return rows, cpu

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each platform process; under --postgres also of the
        PostgreSQL backends serving the bench's databases (those alive at the moment)."""
        snapshot = procstat.cpu_snapshot(self.pids)
        if self.database_marker:
            snapshot["postgres"] = procstat.matching_cpu_seconds(self.database_marker)
        return snapshot

    def cpu_per_order(self, before: dict[str, float], run: dict) -> dict:
        after_run = self.cpu()
        self.step("CPU: waiting for the platform to settle")
        started = time.monotonic()
        seen = asyncio.run(self._wait_seen(run["last_order_id"]))
        settled = self.settle()
        orders = run["placed_total"]

        def per_order(later: dict[str, float], name: str) -> float:
            return (later[name] - before[name]) * 1000 / orders

        processes = {
            name: {"run_ms": per_order(after_run, name), "settled_ms": per_order(settled, name)}
            for name in before
        }
        return {
            "concurrency": CPU_CONCURRENCY,
            "orders": orders,
            "last_order_seen": seen,
            "settle_s": time.monotonic() - started,
            "processes": processes,
            "sum_run_ms": sum(p["run_ms"] for p in processes.values()),
            "sum_settled_ms": sum(p["settled_ms"] for p in processes.values()),
            "load_generator_ms": run["cpu_s"] * 1000 / orders,
        }

    async def _wait_seen(self, order_id: str) -> bool:
        probe = await propagation.open_probe(self.status_db)
        try:
            return await propagation.wait_seen(probe, order_id, SETTLE_TIMEOUT_S)
        finally:
            await probe.close()

    def settle(self, interval: float = 0.5) -> dict[str, float]:
        """CPU snapshot once the platform's processes use no more than an idle share
        (5 % of one core together over ``interval``), or after SETTLE_TIMEOUT_S."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last = self.cpu()
        while time.monotonic() < deadline:
            time.sleep(interval)
            now = self.cpu()
            if sum(now.values()) - sum(last.values()) <= 0.05 * interval:
                return now
            last = now
        return last

    def propagation(self) -> list[dict]:
        rows = []
        for rate in self.plan.rates:
            self.step(f"propagation at {rate}/s")
            argv = [sys.executable, "-m", "ptctl.bench.load", "open"]
            argv += ["--target", self.platform.gateway_address]
            argv += ["--rate", str(rate), "--duration", str(self.plan.rate_s)]
            rows.append(asyncio.run(self._propagation(argv, rate)))
            self.done()
        return rows

    async def _propagation(self, argv: list[str], rate: float) -> dict:
        probe = await propagation.open_probe(self.status_db)
        try:
            return await propagation.measure(argv, self.env, probe, rate)
        finally:
            await probe.close()

    def flow(self) -> dict:
        self.step(f"whole flow x{self.plan.flows}")
        with tqdm(total=self.plan.flows, desc="flows", leave=False, file=sys.stderr) as flows:
            result = asyncio.run(
                whole_flows(
                    self.platform.gateway_address,
                    self.platform.token,
                    self.plan.flows,
                    self.plan.in_flight,
                    progress=lambda: flows.update(),
                )
            )
        self.done()
        return asdict(result) | {"in_flight": self.plan.in_flight}

    def memory(self, key: str) -> dict[str, float]:
        return {name: procstat.memory_mib(pid, key) for name, pid in self.pids.items()}

    def profile(self, out: Path) -> dict[str, str]:
        """Flame graphs of every service under 16 callers placing orders."""
        self.step("profiling the services")
        services = {
            name: pid for name, pid in self.pids.items() if name not in ("envoy", "nats-server")
        }
        with profile.recording(services, out, self.plan.run_s) as written:
            self.closed(self.platform.gateway_address, CPU_CONCURRENCY, self.plan.run_s, 0)
        self.done()
        return written


def steps(plan: Plan, profiled: bool) -> int:
    return 2 + 2 * len(CONCURRENCIES) + len(plan.rates) + 1 + int(profiled)


def run_bench(options: BenchOptions) -> dict:
    """Measure everything on a platform of its own; returns the figures."""
    plan = Plan.of(options.quick)
    marker = ""
    started_at = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = git_commit()
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="ptbench-") as var_dir,
        tqdm(total=steps(plan, options.profile), file=sys.stderr, desc="starting") as bar,
        ExitStack() as stack,
    ):
        service_env = dict(options.service_env)
        sink = stack.enter_context(OtlpSink(keep=0)) if options.tracing else None
        if sink is not None:
            service_env |= sink.service_env(prompt=False)
        config = PlatformConfig.ephemeral(
            Path(var_dir),
            gateway=GatewaySettings(rate_limit=RateLimitSettings.unlimited()),
            service_env=service_env,
            nats_sync=sync_interval(Env()),  # PT_NATS_SYNC_INTERVAL, as under ptctl run
        )
        if options.postgres:
            marker, config.database_urls = stack.enter_context(postgres_databases(config.contexts))
        platform = stack.enter_context(Platform(config))
        noop = stack.enter_context(NoopGateway(platform))
        bench = Bench(platform, noop, plan, bar, marker)
        bar.update()
        bench.step("warm-up")
        bench.closed(platform.gateway_address, CPU_CONCURRENCY, plan.run_s / 2, 0)
        bench.closed(noop.address, CPU_CONCURRENCY, plan.run_s / 2, 0)
        idle = bench.memory("VmRSS")
        bar.update()
        place_order, cpu = bench.place_order()
        spread = bench.propagation()
        flow = bench.flow()
        peak = bench.memory("VmHWM")
        profiles = bench.profile(options.out / f"profiles-{started_at}") if options.profile else {}
        bench.step("stopping")
        stack.pop_all().close()  # the services export their last spans as they stop
        spans = sink.count if sink is not None else None
    return {
        "meta": {
            "commit": commit,
            "database": "postgresql" if options.postgres else "sqlite",
            "mode": "quick" if options.quick else "full",
            "started_at": started_at,
            "service_env": service_env,
            "tracing": options.tracing,
            "spans_received": spans,
            "plan": asdict(plan),
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "place_order": place_order,
        "cpu_per_order": cpu,
        "propagation": spread,
        "flow": flow,
        "memory": {name: {"idle_rss_mib": idle[name], "peak_hwm_mib": peak[name]} for name in idle},
        "profiles": profiles,
    }


def main(options: BenchOptions) -> int:
    result = run_bench(options)
    print(report.table(result))
    data, picture = report.write(result, options.out)
    print(f"\nwritten: {data}, {picture} (and latest.json, latest.png)")
    return 0
