"""``ptctl restart SERVICE...``: restart the replicas of a running ``ptctl run`` one at a
time (several services side by side, each keeping a replica serving).

For each replica in turn, from ``<var>/platform.json``: leave a restart request for the
launcher's supervisor (ptctl/supervisor.py), send the replica SIGTERM, and wait until
the supervisor has started it again (a new pid in platform.json), it answers its gRPC
health check SERVING, and Envoy counts it healthy again; only then the next replica.

The replica drains as every service does on SIGTERM (ptkit/server.py): health
NOT_SERVING, the drain delay (long enough under ``ptctl run`` for Envoy's health checks
to take it out of the balancing), then in-flight calls finish within the grace period.
The command reports whether Envoy had taken the replica out before it exited.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ptctl.envoy_admin import EnvoyAdmin
from ptctl.launcher import PLATFORM_FILE, grpc_serving, tcp_open
from ptctl.status import Manifest, NoPlatform, load_manifest
from ptctl.supervisor import restart_request


class RestartFailed(RuntimeError):
    """A replica did not come back healthy in time, or the launcher went away."""


class UnknownService(LookupError):
    """The running platform has no such service."""


@dataclass(frozen=True)
class Restarted:
    name: str
    old_pid: int
    new_pid: int
    seconds: float
    """From SIGTERM to serving and healthy in Envoy."""
    left_balancing_first: bool
    """Envoy counted the replica unhealthy before its process exited."""


def _children(var_dir: Path) -> dict[str, int | None]:
    """The pid of each child, as the launcher's platform.json says now."""
    for _ in range(20):
        try:
            data = json.loads((var_dir / PLATFORM_FILE).read_text())
        except FileNotFoundError:
            raise RestartFailed("the platform stopped (platform.json is gone)") from None
        except json.JSONDecodeError:
            time.sleep(0.05)
            continue
        children: dict[str, int | None] = data.get("children", {})
        return children
    raise RestartFailed(f"{PLATFORM_FILE} cannot be read")


def replicas_of(var_dir: Path, service: str) -> tuple[Manifest, list[tuple[str, str]]]:
    """The running platform and the (name, address) of each replica of ``service``
    (``order`` or ``order_svc``). NoPlatform, UnknownService."""
    manifest = load_manifest(var_dir)
    if not json.loads((var_dir / PLATFORM_FILE).read_text()).get("supervised"):
        raise NoPlatform(
            f"the platform under {var_dir} is not supervised (not started by ptctl run):"
            " nothing would start a stopped replica again"
        )
    context = service.removesuffix("_svc")
    replicas = [(r.name, r.address) for r in manifest.replicas if r.context == context]
    if not replicas:
        known = sorted({r.context for r in manifest.replicas})
        raise UnknownService(f"no service {service!r} runs here; one of {', '.join(known)}")
    return manifest, replicas


def restart_service(
    var_dir: Path,
    service: str,
    timeout: float = 90.0,
    announce: Callable[[str], None] = print,
) -> list[Restarted]:
    """Restart each replica of ``service`` in turn; see the module doc."""
    manifest, replicas = replicas_of(var_dir, service)
    launcher = json.loads((var_dir / PLATFORM_FILE).read_text())["pid"]
    done = []
    for name, address in replicas:
        result = _restart_one(manifest, launcher, name, address, timeout)
        note = "" if result.left_balancing_first else " (Envoy still balanced to it as it exited)"
        announce(
            f"{name}: restarted (pid {result.old_pid} -> {result.new_pid}), serving and healthy"
            f" in Envoy after {result.seconds:.1f}s{note}"
        )
        done.append(result)
    return done


def _restart_one(
    manifest: Manifest, launcher: int, name: str, address: str, timeout: float
) -> Restarted:
    var_dir = manifest.var_dir
    old = _children(var_dir).get(name)
    if old is None:
        raise RestartFailed(f"{name} is not running (the supervisor is restarting it)")
    admin = EnvoyAdmin(manifest.admin_socket)
    credentials = manifest.client_credentials()
    request = restart_request(var_dir, name)
    request.touch(mode=0o600)
    started = time.monotonic()
    deadline = started + timeout
    os.kill(old, signal.SIGTERM)
    left_first = False
    port = int(address.rsplit(":", 1)[1])
    while tcp_open(port):  # draining: Envoy should take it out before the port closes
        _still_there(launcher, name, deadline)
        left_first = left_first or not _envoy_healthy(admin, address)
        time.sleep(0.05)
    new = old
    while new == old:
        _still_there(launcher, name, deadline)
        time.sleep(0.05)
        new = _children(var_dir).get(name) or old
    while not (grpc_serving(address, credentials) and _envoy_healthy(admin, address)):
        _still_there(launcher, name, deadline)
        time.sleep(0.1)
    return Restarted(name, old, new, time.monotonic() - started, left_first)


def _envoy_healthy(admin: EnvoyAdmin, address: str) -> bool:
    try:
        flags = admin.host_flags(address)
    except OSError:
        return False
    return bool(flags) and all(flag == "healthy" for flag in flags)


def _still_there(launcher: int, name: str, deadline: float) -> None:
    try:
        os.kill(launcher, 0)
    except ProcessLookupError:
        raise RestartFailed(
            f"the launcher (pid {launcher}) exited while {name} restarted"
        ) from None
    if time.monotonic() > deadline:
        raise RestartFailed(f"{name} was not back, serving and healthy in Envoy, in time")


def cmd_restart(var_dir: Path, services: list[str]) -> int:
    """``ptctl restart``: 0 when every replica came back; 2 for no platform or an
    unknown service (nothing restarted); 1 when a replica did not come back. The services
    named roll side by side, each one's replicas one at a time."""
    try:
        for service in services:
            replicas_of(var_dir, service)
    except (NoPlatform, UnknownService) as error:
        print(f"restart refused: {error}", flush=True, file=sys.stderr)
        return 2
    # services side by side (each keeps a replica serving), each one's replicas in turn
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        rolling = [
            pool.submit(restart_service, var_dir, service, announce=_print_line)
            for service in services
        ]
    failed = [error for r in rolling if (error := r.exception()) is not None]
    for error in failed:
        if not isinstance(error, RestartFailed | NoPlatform):
            raise error
        print(f"restart failed: {error}", flush=True, file=sys.stderr)
    return 1 if failed else 0


def _print_line(line: str) -> None:
    print(line, flush=True)
