"""What a platform start leaves on disk is its owner's only: keys, SQLite databases (and
their WAL files), logs, JetStream's store and Envoy's configuration are readable by no
other local user, and the var dir itself is closed to them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc

from ptctl.launcher import Platform
from tests.fault_kit import Desk


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes_under(var_dir: Path) -> Iterator[tuple[Path, int]]:
    """Every file and directory under ``var_dir`` (itself included) with its mode.

    The platform keeps running while this walks: JetStream writes ``*.tmp`` files and
    renames them. A file gone between listing and ``lstat`` is readable by nobody, so
    it is passed over (``os.walk`` passes over a directory gone the same way)."""
    yield var_dir, mode(var_dir)
    for directory, subdirs, files in os.walk(var_dir):
        for name in [*subdirs, *files]:
            path = Path(directory, name)
            try:
                status = path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISLNK(status.st_mode):
                yield path, stat.S_IMODE(status.st_mode)


def open_to_others(var_dir: Path) -> list[str]:
    """Every file and directory under ``var_dir`` that its group or others may use."""
    return [
        f"{path.relative_to(var_dir)} {permissions:04o}"
        for path, permissions in modes_under(var_dir)
        if permissions & 0o077
    ]


def test_a_started_platform_keeps_its_state_and_logs_private(platform: Platform) -> None:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        Desk(platform, channel).place_order("Private 1:1")  # the databases are written
    var_dir = platform.var_dir
    kinds = {
        "keys": list((var_dir / "jwt").rglob("private.pem")),
        "databases": list(var_dir.glob("*_svc.db*")),
        "logs": list((var_dir / "log").glob("*.log")),
        "jetstream": [p for p in (var_dir / "nats").rglob("*") if p.is_file()],
    }
    assert all(kinds.values()), {kind: len(found) for kind, found in kinds.items()}
    assert open_to_others(var_dir) == []
    assert mode(var_dir) == 0o700
