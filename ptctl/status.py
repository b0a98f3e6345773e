"""``ptctl status``: one screen of a running platform's state, or one JSON document.

It reads ``<var>/platform.json``, which :meth:`ptctl.launcher.Platform.start` writes
(and ``stop`` removes), then asks every part at once: each replica's gRPC health and
Prometheus endpoint (version, uptime, outbox backlog, consumer lag, dead letters, NATS
connection), Envoy's admin socket (live, upstream hosts healthy) and NATS as the admin
identity (the event stream's messages, the dead-letter stream's total).

Exit status: 0 every part is healthy, 1 something is down, 2 no platform runs there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import nats.errors
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.errors import NotFoundError
from prometheus_client.parser import text_string_to_metric_families

from ptctl.bus import connected
from ptctl.dlq import dead_letter_count
from ptctl.envoy_admin import EnvoyAdmin
from ptctl.launcher import PLATFORM_FILE
from ptkit.messaging import NatsIdentity

T = TypeVar("T")

HEALTHY, DOWN, NOT_RUNNING = 0, 1, 2
DASH = "—"


class NoPlatform(LookupError):
    """No platform.json, or one whose launcher has exited."""


# -- what platform.json says runs ----------------------------------------------------------
@dataclass(frozen=True)
class Replica:
    context: str
    name: str
    address: str
    metrics_port: int


@dataclass(frozen=True)
class Manifest:
    var_dir: Path
    gateway_address: str
    admin_socket: Path
    nats_url: str
    event_stream: str
    nats_admin_seed: Path | None
    replicas: list[Replica]
    tls: dict[str, str] | None

    def client_credentials(self) -> grpc.ChannelCredentials | None:
        """The launcher's client certificate (mutual TLS to the services) under PT_TLS."""
        if self.tls is None:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=Path(self.tls["ca_file"]).read_bytes(),
            private_key=Path(self.tls["client_key_file"]).read_bytes(),
            certificate_chain=Path(self.tls["client_cert_file"]).read_bytes(),
        )

    @property
    def nats_identity(self) -> NatsIdentity:
        seed = self.nats_admin_seed
        return NatsIdentity(seed_file=seed if seed is not None and seed.is_file() else None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_manifest(var_dir: Path) -> Manifest:
    """The platform running under ``var_dir``; NoPlatform if none (or its launcher died)."""
    path = var_dir / PLATFORM_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise NoPlatform(f"no platform running under {var_dir} (no {PLATFORM_FILE})") from error
    pid = data.get("pid")
    if isinstance(pid, int) and not _alive(pid):
        raise NoPlatform(
            f"no platform running under {var_dir}: {PLATFORM_FILE} was left by process {pid},"
            " which has exited"
        )
    nats_ = data["nats"]
    seed = nats_.get("admin_seed_file")
    return Manifest(
        var_dir=var_dir,
        gateway_address=data["gateway"]["address"],
        admin_socket=Path(data["gateway"]["admin_socket"]),
        nats_url=nats_["url"],
        event_stream=nats_.get("event_stream", "PT_EVENTS"),
        nats_admin_seed=Path(seed) if seed else None,
        replicas=[
            Replica(context, r["name"], r["address"], int(r.get("metrics_port") or 0))
            for context, replicas in data["services"].items()
            for r in replicas
        ],
        tls=data.get("tls"),
    )


# -- the model -----------------------------------------------------------------------------
@dataclass
class GatewayStatus:
    address: str
    admin_socket: str
    live: bool = False
    upstream_hosts: int = 0
    unhealthy_hosts: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.live and self.upstream_hosts > 0 and not self.unhealthy_hosts


@dataclass
class NatsStatus:
    url: str
    event_stream: str
    reachable: bool = False
    events: int | None = None
    dead_letters: int | None = None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.reachable and self.error is None


@dataclass(frozen=True)
class ConsumerLag:
    durable: str
    stream: str
    pending: int
    ack_pending: int


@dataclass
class Outbox:
    backlog: int
    oldest_age_seconds: float


@dataclass
class ReplicaStatus:
    context: str
    name: str
    address: str
    metrics_port: int
    health: str = "UNREACHABLE"
    """grpc.health.v1's answer (SERVING, NOT_SERVING, ...) or UNREACHABLE."""
    health_error: str | None = None
    metrics_error: str | None = None
    """Why /metrics did not answer; None when it did."""
    version: str | None = None
    uptime_seconds: float | None = None
    outbox: Outbox | None = None
    """None: the service has no outbox (status_svc), or its relay has not counted yet."""
    consumers: list[ConsumerLag] = field(default_factory=list)
    dead_letters: dict[str, int] = field(default_factory=dict)
    """Stored dead letters per durable."""
    nats_connected: bool | None = None

    @property
    def metrics_up(self) -> bool:
        return self.metrics_error is None

    @property
    def healthy(self) -> bool:
        return self.health == "SERVING" and self.metrics_up and self.nats_connected is True

    @property
    def pending(self) -> int | None:
        return sum(c.pending for c in self.consumers) if self.consumers else None

    @property
    def ack_pending(self) -> int | None:
        return sum(c.ack_pending for c in self.consumers) if self.consumers else None

    @property
    def dead_letters_total(self) -> int | None:
        return sum(self.dead_letters.values()) if self.dead_letters else None

    def problems(self) -> list[str]:
        found = []
        if self.health != "SERVING":
            found.append(f"{self.name}: health {self.health}")
        if not self.metrics_up:
            found.append(f"{self.name}: metrics endpoint :{self.metrics_port} does not answer")
        elif self.nats_connected is not True:
            found.append(f"{self.name}: not connected to NATS")
        return found


@dataclass
class PlatformStatus:
    var_dir: str
    gateway: GatewayStatus
    nats: NatsStatus
    services: dict[str, list[ReplicaStatus]]

    @property
    def replicas(self) -> list[ReplicaStatus]:
        return [r for replicas in self.services.values() for r in replicas]

    def problems(self) -> list[str]:
        found = []
        if not self.gateway.healthy:
            found.append(f"gateway: {_gateway_problem(self.gateway)}")
        if not self.nats.healthy:
            found.append(f"NATS: {self.nats.error or 'unreachable'}")
        for replica in self.replicas:
            found += replica.problems()
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems()


# -- gathering -----------------------------------------------------------------------------
def check_health(
    address: str, credentials: grpc.ChannelCredentials | None, timeout: float
) -> tuple[str, str | None]:
    """grpc.health.v1 Check of the whole server: its status name, or UNREACHABLE and why."""
    channel = (
        grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    )
    try:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=timeout
        )
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else None
        return "UNREACHABLE", code.name if code is not None else repr(error)
    finally:
        channel.close()
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status), None


def scrape(port: int, timeout: float) -> str:
    """The text of a replica's /metrics; OSError when it does not answer."""
    if not port:
        raise OSError("no metrics port")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
        text: str = answer.read().decode()
    return text


def read_metrics(replica: ReplicaStatus, text: str, now: float) -> None:
    """Fill ``replica``'s numbers from its Prometheus exposition."""
    backlog: dict[str, float] = {}
    oldest: dict[str, float] = {}
    lag: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "pt_build_info" and value == 1:
                replica.version = labels.get("version")
            elif name == "process_start_time_seconds":
                replica.uptime_seconds = max(0.0, now - value)
            elif name == "pt_outbox_backlog":
                backlog[labels.get("source", "")] = value
            elif name == "pt_outbox_oldest_age_seconds":
                oldest[labels.get("source", "")] = value
            elif name in ("pt_consumer_pending_messages", "pt_consumer_ack_pending_messages"):
                key = (labels.get("consumer", ""), labels.get("stream", ""))
                lag.setdefault(key, {})[name] = value
            elif name == "pt_dead_letters":
                replica.dead_letters[labels.get("consumer", "")] = int(value)
            elif name == "pt_nats_connected":
                replica.nats_connected = value == 1
    if backlog:
        replica.outbox = Outbox(int(sum(backlog.values())), max(oldest.values(), default=0.0))
    replica.consumers = [
        ConsumerLag(
            durable,
            stream,
            int(values.get("pt_consumer_pending_messages", 0)),
            int(values.get("pt_consumer_ack_pending_messages", 0)),
        )
        for (durable, stream), values in sorted(lag.items())
    ]


def replica_status(
    replica: Replica, credentials: grpc.ChannelCredentials | None, timeout: float
) -> ReplicaStatus:
    status = ReplicaStatus(replica.context, replica.name, replica.address, replica.metrics_port)
    status.health, status.health_error = check_health(replica.address, credentials, timeout)
    try:
        text = scrape(replica.metrics_port, timeout)
    except (OSError, ValueError) as error:
        status.metrics_error = str(error) or repr(error)
        return status
    read_metrics(status, text, time.time())
    return status


def gateway_status(address: str, admin_socket: Path, timeout: float) -> GatewayStatus:
    """Envoy's admin: /ready (LIVE) and every upstream host's health flags (/clusters)."""
    status = GatewayStatus(address, str(admin_socket))
    admin = EnvoyAdmin(admin_socket)
    try:
        status.live = admin.get("/ready", timeout).strip() == "LIVE"
        clusters = admin.get("/clusters", timeout)
    except OSError as error:
        status.error = str(error) or repr(error)
        return status
    for line in clusters.splitlines():
        if "::health_flags::" in line:
            status.upstream_hosts += 1
            if not line.endswith("::healthy"):
                status.unhealthy_hosts.append(line.split("::health_flags::")[0])
    return status


async def _read_nats(status: NatsStatus, identity: NatsIdentity, timeout: float) -> None:
    async with connected(status.url, timeout, timeout, identity) as js:
        status.reachable = True
        try:
            status.events = (await js.stream_info(status.event_stream)).state.messages
        except NotFoundError:
            status.error = f"stream {status.event_stream} does not exist"
        status.dead_letters = await dead_letter_count(js)


def nats_status(url: str, stream: str, identity: NatsIdentity, timeout: float) -> NatsStatus:
    status = NatsStatus(url, stream)
    try:
        asyncio.run(_read_nats(status, identity, timeout))
    except (OSError, TimeoutError, nats.errors.Error) as error:
        status.error = f"unreachable: {error!r}" if not status.reachable else repr(error)
    return status


def gather(manifest: Manifest, timeout: float) -> PlatformStatus:
    """Ask every part at once; each answer within ``timeout`` seconds or it counts as down."""
    credentials = manifest.client_credentials()
    jobs: list[Callable[[], Any]] = [
        lambda: gateway_status(manifest.gateway_address, manifest.admin_socket, timeout),
        lambda: nats_status(
            manifest.nats_url, manifest.event_stream, manifest.nats_identity, timeout
        ),
        *(
            (lambda r=replica: replica_status(r, credentials, timeout))
            for replica in manifest.replicas
        ),
    ]
    gateway, nats_, *replicas = _all_at_once(jobs)
    services: dict[str, list[ReplicaStatus]] = {}
    for replica in replicas:
        services.setdefault(replica.context, []).append(replica)
    return PlatformStatus(str(manifest.var_dir), gateway, nats_, services)


def _all_at_once(jobs: Iterable[Callable[[], T]]) -> list[T]:
    jobs = list(jobs)
    with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))


# -- rendering -----------------------------------------------------------------------------
def as_dict(status: PlatformStatus) -> dict[str, Any]:
    """The JSON document of ``ptctl status --json``."""
    gateway, nats_ = status.gateway, status.nats
    return {
        "var_dir": status.var_dir,
        "healthy": status.healthy,
        "problems": status.problems(),
        "gateway": {
            "address": gateway.address,
            "admin_socket": gateway.admin_socket,
            "healthy": gateway.healthy,
            "live": gateway.live,
            "upstream_hosts": gateway.upstream_hosts,
            "unhealthy_hosts": gateway.unhealthy_hosts,
            "error": gateway.error,
        },
        "nats": {
            "url": nats_.url,
            "healthy": nats_.healthy,
            "reachable": nats_.reachable,
            "event_stream": nats_.event_stream,
            "events": nats_.events,
            "dead_letters": nats_.dead_letters,
            "error": nats_.error,
        },
        "services": {
            context: [_replica_dict(r) for r in replicas]
            for context, replicas in status.services.items()
        },
    }


def _replica_dict(replica: ReplicaStatus) -> dict[str, Any]:
    outbox = replica.outbox
    return {
        "name": replica.name,
        "address": replica.address,
        "metrics_port": replica.metrics_port,
        "healthy": replica.healthy,
        "health": replica.health,
        "health_error": replica.health_error,
        "metrics": replica.metrics_up,
        "metrics_error": replica.metrics_error,
        "version": replica.version,
        "uptime_seconds": replica.uptime_seconds,
        "outbox": (
            {"backlog": outbox.backlog, "oldest_age_seconds": outbox.oldest_age_seconds}
            if outbox
            else None
        ),
        "consumers": [
            {
                "durable": c.durable,
                "stream": c.stream,
                "pending": c.pending,
                "ack_pending": c.ack_pending,
            }
            for c in replica.consumers
        ],
        "dead_letters": replica.dead_letters,
        "dead_letters_total": replica.dead_letters_total,
        "nats_connected": replica.nats_connected,
    }


def to_json(status: PlatformStatus) -> str:
    return json.dumps(as_dict(status), indent=2)


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h04m``, ``3d02h``; a dash for no value."""
    if seconds is None:
        return DASH
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _value(number: int | None) -> str:
    return DASH if number is None else str(number)


def _yes_no(flag: bool | None) -> str:
    return DASH if flag is None else ("yes" if flag else "NO")


def columns(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    """Rows aligned in columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _gateway_summary(gateway: GatewayStatus) -> str:
    if gateway.error:
        return f"admin does not answer ({gateway.error})"
    healthy = gateway.upstream_hosts - len(gateway.unhealthy_hosts)
    hosts = f"upstream hosts {healthy}/{gateway.upstream_hosts} healthy"
    return f"{'live' if gateway.live else 'NOT live'}, {hosts}"


def _gateway_problem(gateway: GatewayStatus) -> str:
    summary = _gateway_summary(gateway)
    if gateway.unhealthy_hosts:
        summary += f" (not healthy: {', '.join(gateway.unhealthy_hosts)})"
    return summary


def _nats_summary(nats_: NatsStatus) -> str:
    if not nats_.reachable:
        return nats_.error or "unreachable"
    summary = (
        f"reachable, {nats_.event_stream} {_value(nats_.events)} messages, "
        f"{_value(nats_.dead_letters)} dead letters"
    )
    return f"{summary}; {nats_.error}" if nats_.error else summary


def _state(healthy: bool) -> str:
    return "OK" if healthy else "DOWN"


def _outbox_cells(replica: ReplicaStatus) -> tuple[str, str]:
    """The backlog and its oldest row's age (none while nothing waits)."""
    if replica.outbox is None:
        return DASH, DASH
    backlog = replica.outbox.backlog
    return str(backlog), duration(replica.outbox.oldest_age_seconds) if backlog else DASH


def _replica_row(replica: ReplicaStatus) -> tuple[str, ...]:
    health = replica.health if replica.metrics_up else f"{replica.health}, no metrics"
    lag = DASH if replica.pending is None else f"{replica.pending}/{_value(replica.ack_pending)}"
    return (
        replica.name,
        replica.address,
        health,
        replica.version or DASH,
        duration(replica.uptime_seconds),
        *_outbox_cells(replica),
        lag,
        _value(replica.dead_letters_total),
        _yes_no(replica.nats_connected),
        _state(replica.healthy),
    )


def _consumer_rows(status: PlatformStatus) -> list[tuple[str, ...]]:
    """One row per durable and stream: every replica reports the same durable, the
    largest figure counts (as the dashboards take the max)."""
    lag: dict[tuple[str, str], tuple[int, int]] = {}
    dead: dict[str, int] = {}
    for replica in status.replicas:
        for c in replica.consumers:
            pending, ack = lag.get((c.durable, c.stream), (0, 0))
            lag[(c.durable, c.stream)] = (max(pending, c.pending), max(ack, c.ack_pending))
        for durable, count in replica.dead_letters.items():
            dead[durable] = max(dead.get(durable, 0), count)
    return [
        (durable, stream, str(pending), str(ack), _value(dead.get(durable)))
        for (durable, stream), (pending, ack) in sorted(lag.items())
    ]


def render(status: PlatformStatus) -> str:
    """The screen of ``ptctl status``."""
    problems = status.problems()
    lines = [
        f"PtPlatform under {status.var_dir}: "
        + ("every part healthy" if not problems else f"{len(problems)} problem(s)"),
        "",
        *columns(
            [
                ("PART", "ADDRESS", "DETAIL", "STATE"),
                (
                    "gateway",
                    status.gateway.address,
                    _gateway_summary(status.gateway),
                    _state(status.gateway.healthy),
                ),
                ("nats", status.nats.url, _nats_summary(status.nats), _state(status.nats.healthy)),
            ],
            indent="",
        ),
        "",
        "SERVICES",
        *columns(
            [
                (
                    "NAME",
                    "ADDRESS",
                    "HEALTH",
                    "VERSION",
                    "UPTIME",
                    "OUTBOX",
                    "OLDEST",
                    "LAG PEND/ACK",
                    "DEAD",
                    "NATS",
                    "STATE",
                ),
                *(_replica_row(r) for r in status.replicas),
            ]
        ),
    ]
    consumers = _consumer_rows(status)
    if consumers:
        lines += [
            "",
            "CONSUMERS",
            *columns([("DURABLE", "STREAM", "PENDING", "ACK PENDING", "DEAD LETTERS"), *consumers]),
        ]
    if problems:
        lines += ["", "PROBLEMS", *(f"  {problem}" for problem in problems)]
    return "\n".join(lines)


# -- the command ---------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    var_dir = Path(args.var_dir).resolve()
    try:
        manifest = load_manifest(var_dir)
    except NoPlatform as error:
        print(str(error), file=sys.stderr)
        return NOT_RUNNING
    status = gather(manifest, args.timeout)
    print(to_json(status) if args.json else render(status))
    return HEALTHY if status.healthy else DOWN


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_var_dir: Path
) -> None:
    status = commands.add_parser(
        "status",
        help="one screen of a running platform: gateway, NATS, every replica's health and lag",
        description="Show a running platform's state (started by `ptctl run` or a test's "
        "Platform, found through <var dir>/platform.json): the gateway, NATS, and per "
        "service replica its gRPC health, version, uptime, outbox backlog, consumer lag "
        "and dead letters.",
        epilog="Exit status: 0 every part is healthy, 1 something is down, "
        "2 no platform runs under the var dir.",
    )
    status.add_argument(
        "--var-dir",
        metavar="DIR",
        default=str(default_var_dir),
        help=f"the platform's var dir (default: $PT_VAR_DIR, else var; now {default_var_dir})",
    )
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        help="seconds each part has to answer before it counts as down (default 3)",
    )
    status.set_defaults(func=cmd_status)
