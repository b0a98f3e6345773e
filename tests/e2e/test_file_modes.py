"""What a platform start leaves on disk is its owner's only: keys, SQLite databases (and
their WAL files), logs, JetStream's store and Envoy's configuration are readable by no
other local user, and the var dir itself is closed to them."""

from __future__ import annotations

import stat
from pathlib import Path

import grpc

from ptctl.launcher import Platform
from tests.fault_kit import Desk


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_to_others(var_dir: Path) -> list[str]:
    """Every file and directory under ``var_dir`` that its group or others may use."""
    return [
        f"{path.relative_to(var_dir)} {mode(path):04o}"
        for path in [var_dir, *var_dir.rglob("*")]
        if not path.is_symlink() and mode(path) & 0o077
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
