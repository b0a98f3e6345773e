"""``ptctl``: run the platform, mint development tokens, walk the demo scenario."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ptctl.keys import ensure_keys
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


def cmd_run(_: argparse.Namespace) -> int:
    from ptctl.launcher import Platform, PlatformConfig, StartupError

    try:
        config = PlatformConfig.defaults(_var_dir())
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    platform = Platform(config)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print("starting PtPlatform ...", flush=True)
    try:
        platform.start()
    except StartupError as error:
        print(f"start-up failed: {error}", file=sys.stderr)
        return 1
    width = max(len(name) for name, _ in platform.describe())
    for name, where in platform.describe():
        print(f"  {name:<{width}}  {where}")
    print(
        f"\nPtPlatform is up: gateway {platform.gateway_address}. Ctrl-C stops everything.",
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        print("stopping ...", flush=True)
        platform.stop()
        print("stopped.", flush=True)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Sign with the development key under ``$PT_VAR_DIR/jwt`` (created on first use) for
    the issuer and audience the platform is configured with."""
    env = Env()
    keys = ensure_keys(_var_dir() / "jwt")
    issuer = env.str("PT_JWT_ISSUER", DEV_ISSUER)
    audience = env.str("PT_JWT_AUDIENCE", DEV_AUDIENCE)
    print(mint_token(keys, Role(args.role), args.subject, args.ttl, issuer, audience))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ptctl.demo import run_demo

    with exit_on_config_error():
        gateway = args.gateway or default_gateway(Env())
    return run_demo(gateway, _var_dir())


MIGRATED_SERVICES = ("order", "manager", "trainer", "status")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ptctl", description="PtPlatform developer tool")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole platform and wait for Ctrl-C").set_defaults(
        func=cmd_run
    )
    token = commands.add_parser("token", help="print a development JWT")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--subject", required=True, help="customer, trainer or manager id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(func=cmd_token)
    demo = commands.add_parser("demo", help="walk the booking scenario against a running platform")
    demo.add_argument(
        "--gateway",
        help="host:port of the gateway (default: $PT_GATEWAY_HOST:$PT_GATEWAY_PORT, "
        "127.0.0.1:8080)",
    )
    demo.set_defaults(func=cmd_demo)
    migrate = commands.add_parser("migrate", help="upgrade the services' database schemas")
    migrate.add_argument("--service", choices=[*MIGRATED_SERVICES, "all"], default="all")
    migrate.set_defaults(func=cmd_migrate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
