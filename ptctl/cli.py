"""``ptctl``: run the platform, mint development tokens, walk the demo scenario, watch
notifications, show a running platform's state (status), audit it, measure one of its
own (bench), rebuild status_svc's views, migrate, and list or redrive dead letters."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ptctl.keys import PRIVATE_UMASK, ensure_keys, ensure_platform_keys
from ptkit.auth import Role
from ptkit.config import ConfigError, Env, exit_on_config_error
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, mint_token

if TYPE_CHECKING:
    from sqlalchemy import MetaData


def _var_dir() -> Path:
    return Env().path("PT_VAR_DIR", Path("var"))


def default_gateway(env: Env) -> str:
    """Where ``ptctl run`` puts the gateway: ``PT_GATEWAY_HOST`` (a wildcard bind address
    is reached on loopback) and ``PT_GATEWAY_PORT``."""
    host = env.str("PT_GATEWAY_HOST", "127.0.0.1")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{env.port('PT_GATEWAY_PORT', 8080)}"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
RUN_DRAIN_DELAY_SECONDS = "2.5"
"""A stopping service's NOT_SERVING phase under ``ptctl run``: Envoy health-checks every
second and takes a host out after two failed checks, so the replica leaves the balancing
before its port closes (ptctl restart; docs/operations.md)."""


def cmd_run(args: argparse.Namespace) -> int:
    """Start the platform, restart what crashes, stop everything on a signal."""
    from ptctl.launcher import Platform, PlatformConfig, StartupError, available_contexts
    from ptctl.replicas import DATABASE_SERVER_URL, parse_replicas
    from ptctl.supervisor import Supervisor
    from ptkit.logs import configure_logging

    configure_logging("ptctl-run")
    environ = dict(os.environ)
    if args.database_server:
        environ[DATABASE_SERVER_URL] = args.database_server
    try:
        replicas = parse_replicas(args.replicas or "", available_contexts())
        config = PlatformConfig.defaults(_var_dir(), Env(environ), replicas)
        config.nats_cluster = args.nats_cluster
        if "PT_SHUTDOWN_DRAIN_DELAY_SECONDS" not in environ:
            config.service_env["PT_SHUTDOWN_DRAIN_DELAY_SECONDS"] = RUN_DRAIN_DELAY_SECONDS
        platform = Platform(config)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    supervisor = Supervisor(platform)

    def on_signal(*_: object) -> None:
        # The first signal stops the platform (abandoning a start-up in progress); one
        # during the stop hurries it: SIGKILL to every child's process group. No signal
        # interrupts the stop itself, so no child is left behind.
        supervisor.halt()
        if stopping.is_set():
            platform.hurry()
        stopping.set()
        platform.cancelled.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    print("starting PtPlatform ...", flush=True)
    try:
        platform.start()
    except StartupError as error:
        if stopping.is_set():
            print("start-up interrupted; stopped.", flush=True)
            return 0
        print(f"start-up failed: {error}", file=sys.stderr)
        return 1
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    supervisor.start()
    try:
        width = max(len(name) for name, _ in platform.describe())
        for name, where in platform.describe():
            print(f"  {name:<{width}}  {where}")
        print(
            f"\nPtPlatform is up: gateway {platform.gateway_address}. Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping.wait(1.0):
            pass
    finally:
        print("stopping ...", flush=True)
        supervisor.stop()
        try:
            platform.stop()
        finally:
            supervisor.release()
        print("stopped.", flush=True)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    from ptctl.restart import cmd_restart as restart

    return restart(_var_dir(), args.services)


def dev_token(role: Role, subject: str, ttl: int = 3600) -> str:
    """Signed with the development key under ``$PT_VAR_DIR/jwt`` (created on first use)
    for the issuer and audience the platform is configured with."""
    env = Env()
    keys = ensure_keys(_var_dir() / "jwt")
    issuer = env.str("PT_JWT_ISSUER", DEV_ISSUER)
    audience = env.str("PT_JWT_AUDIENCE", DEV_AUDIENCE)
    return mint_token(keys, role, subject, ttl, issuer, audience)


def cmd_token(args: argparse.Namespace) -> int:
    print(dev_token(Role(args.role), args.subject, args.ttl))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Create (once) the users' and the service key pairs; print what goes where."""
    keys = ensure_platform_keys(Path(args.dir) if args.dir else _var_dir() / "jwt")
    for path, use in (
        (keys.users.jwks, "users' public keys: the gateway and PT_JWT_PUBLIC_KEY_FILE"),
        (keys.services_jwks, "service public key: PT_JWT_SERVICE_KEY_FILE only"),
        (keys.service.private_key, "service signing key: manager_svc's PT_SIGNING_KEY_FILE"),
        (keys.users.private_key, "users' signing key: `ptctl token` only, never mounted"),
    ):
        print(f"{path}  {use}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Print the customer's notifications as JSON lines until Ctrl-C, reconnecting with
    the last sequence after a lost connection."""
    import grpc

    from ptctl.watch import NotificationWatcher, as_json
    from ptkit.logs import configure_logging
    from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc

    configure_logging("ptctl")
    with exit_on_config_error():
        gateway = args.gateway or default_gateway(Env())

    def metadata() -> tuple[tuple[str, str], ...]:
        token = args.token or dev_token(Role.CUSTOMER, args.customer)
        return (("authorization", f"Bearer {token}"),)

    with grpc.insecure_channel(gateway) as channel:
        watcher = NotificationWatcher(
            status_grpc.StatusServiceStub(channel), args.customer, metadata, after=args.after
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: watcher.close())
        try:
            for notification in watcher.notifications():
                print(as_json(notification), flush=True)
        except grpc.RpcError as error:
            print(f"watch failed: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ptctl.demo import run_demo

    with exit_on_config_error():
        gateway = args.gateway or default_gateway(Env())
    return run_demo(gateway, _var_dir())


def cmd_verify(args: argparse.Namespace) -> int:
    """Audit the running platform; exit 1 unless it is clean (see ptctl/verify.py)."""
    import json

    from ptctl.launcher import DEFAULT_METRICS_PORTS, DEFAULT_NATS_PORT
    from ptctl.verify import Target, audit

    env = Env()
    with exit_on_config_error():
        gateway = args.gateway or default_gateway(env)
        nats_url = args.nats_url or env.str(
            "PT_NATS_URL", f"nats://127.0.0.1:{env.port('PT_NATS_PORT', DEFAULT_NATS_PORT)}"
        )
        metrics = {
            context: [
                f"http://127.0.0.1:{env.port(f'PT_{context.upper()}_METRICS_PORT', port)}/metrics"
            ]
            for context, port in DEFAULT_METRICS_PORTS.items()
        }
    given: dict[str, list[str]] = {}
    for entry in args.metrics:
        context, _, url = entry.partition("=")
        given.setdefault(context, []).append(url)
    metrics.update(given)  # a context named on the command line: only its given replicas
    token = args.token or dev_token(Role.MANAGER, "ptctl-verify")
    report = audit(Target(gateway, token, nats_url, metrics), args.settle, args.outbox_age)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return 0 if report.clean else 1


MIGRATED_SERVICES = ("order", "manager", "trainer", "status")


def cmd_revision(args: argparse.Namespace) -> int:
    """Write the service's next migration, autogenerated from what its models add to the
    newest revision; review it (e.g. a server default for a new NOT NULL column)."""
    import asyncio
    import importlib

    from ptkit.migrations import new_revision

    sql = importlib.import_module(f"{args.service}_svc.adapters.sql")
    path = asyncio.run(new_revision(sql.metadata, args.message))
    print(f"wrote {path}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade each chosen service's database (``PT_<CTX>_DATABASE_URL``, as the service
    reads it) to its newest revision, as the service would at start."""
    import asyncio
    import importlib

    from ptkit.migrations import upgrade_schema
    from ptkit.sql import create_engine

    async def migrate(url: str, metadata: MetaData) -> None:
        engine = create_engine(url)
        try:
            await upgrade_schema(engine, metadata)
        finally:
            await engine.dispose()

    env, var_dir = Env(), _var_dir()
    contexts = MIGRATED_SERVICES if args.service == "all" else (args.service,)
    with exit_on_config_error():
        urls = {
            context: env.database_url(
                f"PT_{context.upper()}_DATABASE_URL", f"sqlite:///{var_dir / f'{context}_svc.db'}"
            )
            for context in contexts
        }
    for context, url in urls.items():
        sql = importlib.import_module(f"{context}_svc.adapters.sql")
        asyncio.run(migrate(url, sql.metadata))
        print(f"{context}_svc: migrated to the newest revision")
    return 0


def cmd_rebuild_views(args: argparse.Namespace) -> int:
    """Rebuild status_svc's views from the event archive and swap them in."""
    from nats.errors import Error as NatsError
    from sqlalchemy.exc import SQLAlchemyError

    from ptctl.rebuild import run
    from ptkit.runtime import DEFAULT_NATS_URL
    from status_svc.application.rebuild import HistoryIncomplete

    env = Env()
    with exit_on_config_error():
        database_url = args.database_url or env.database_url(
            "PT_STATUS_DATABASE_URL", f"sqlite:///{_var_dir() / 'status_svc.db'}"
        )
        nats_url = args.nats_url or env.str("PT_NATS_URL", DEFAULT_NATS_URL)
        stream = env.str("PT_STREAM_NAME", "PT_EVENTS")
    try:
        summary = run(database_url, nats_url, stream)
    except HistoryIncomplete as error:
        print(f"rebuild refused: {error}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, NatsError, SQLAlchemyError) as error:
        print(f"rebuild failed: {error!r}; the live views were kept", file=sys.stderr)
        return 1
    print(
        f"rebuilt status_svc views: {summary.events} events replayed, {summary.views} views, "
        f"{summary.notifications} notifications in {summary.seconds:.1f} s"
    )
    if summary.failed:
        print(
            f"{len(summary.failed)} events left out, their policy failed (see the log): "
            + ", ".join(summary.failed),
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # keys, databases, logs and stores: readable by their owner only
    parser = argparse.ArgumentParser(prog="ptctl", description="PtPlatform developer tool")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="start the whole platform, restart what crashes, stop on Ctrl-C"
    )
    run.add_argument(
        "--replicas",
        metavar="CTX=N,...",
        help="replicas per service, e.g. order=2,status=2 (more than one needs PostgreSQL)",
    )
    run.add_argument(
        "--database-server",
        metavar="URL",
        help="PostgreSQL server for the replicated services' ptplatform_<ctx> databases"
        " (default: $PT_DATABASE_SERVER_URL)",
    )
    run.add_argument(
        "--nats-cluster",
        type=int,
        choices=(1, 3),
        default=1,
        help="nats-servers with routes between them; the stream has as many replicas",
    )
    run.set_defaults(func=cmd_run)
    restart = commands.add_parser(
        "restart",
        help="restart a running `ptctl run`'s service replicas one at a time, draining each",
    )
    restart.add_argument("services", nargs="+", metavar="SERVICE", help="e.g. order")
    restart.set_defaults(func=cmd_restart)
    token = commands.add_parser("token", help="print a development JWT")
    token.add_argument(
        "--role", required=True, choices=[r.value for r in Role if r is not Role.SERVICE]
    )
    token.add_argument("--subject", required=True, help="customer, trainer or manager id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(func=cmd_token)
    keys = commands.add_parser(
        "keys", help="create the users' and the service key pairs (e.g. for k8s Secrets)"
    )
    keys.add_argument(
        "--dir", help="where (default: $PT_VAR_DIR/jwt); the service pair in service/"
    )
    keys.set_defaults(func=cmd_keys)
    demo = commands.add_parser("demo", help="walk the booking scenario against a running platform")
    demo.add_argument(
        "--gateway",
        help="host:port of the gateway (default: $PT_GATEWAY_HOST:$PT_GATEWAY_PORT, "
        "127.0.0.1:8080)",
    )
    demo.set_defaults(func=cmd_demo)
    watch = commands.add_parser(
        "watch", help="print a customer's notifications as JSON lines, resuming after outages"
    )
    watch.add_argument("--customer", required=True, help="the customer whose notifications")
    watch.add_argument("--after", type=int, help="resume after this sequence (default: now)")
    watch.add_argument("--gateway", help="host:port (default as for demo)")
    watch.add_argument("--token", help="a bearer token (default: minted from the dev keys)")
    watch.set_defaults(func=cmd_watch)
    verify = commands.add_parser(
        "verify", help="audit a running platform: orders agree everywhere, nothing waits"
    )
    verify.add_argument("--gateway", help="host:port (default as for demo)")
    verify.add_argument("--token", help="a manager bearer token (default: minted from dev keys)")
    verify.add_argument("--nats-url", help="default: $PT_NATS_URL or nats://127.0.0.1:14222")
    verify.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="CONTEXT=URL",
        help="a service's /metrics URL (repeatable; default: the $PT_<CTX>_METRICS_PORT ports)",
    )
    verify.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds to re-read a divergent order before reporting it (default 10)",
    )
    verify.add_argument(
        "--outbox-age",
        type=float,
        default=60.0,
        help="report outbox rows older than this many seconds (default 60)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=cmd_verify)
    migrate = commands.add_parser("migrate", help="upgrade the services' database schemas")
    migrate.add_argument("--service", choices=[*MIGRATED_SERVICES, "all"], default="all")
    migrate.set_defaults(func=cmd_migrate)
    revision = commands.add_parser(
        "revision", help="write a service's next migration from what its models changed"
    )
    revision.add_argument("--service", required=True, choices=MIGRATED_SERVICES)
    revision.add_argument("--message", "-m", required=True, help="what the migration does")
    revision.set_defaults(func=cmd_revision)
    rebuild = commands.add_parser(
        "rebuild-views",
        help="rebuild status_svc's views from the event archive, swap them in while serving",
    )
    rebuild.add_argument(
        "--database-url",
        help="status_svc's database (default: $PT_STATUS_DATABASE_URL, var/status_svc.db)",
    )
    rebuild.add_argument("--nats-url", help="NATS (default: $PT_NATS_URL, nats://127.0.0.1:14222)")
    rebuild.set_defaults(func=cmd_rebuild_views)
    from ptctl import bench, dlq, status

    bench.add_parser(commands)
    dlq.add_parser(commands)
    status.add_parser(commands, _var_dir())
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
