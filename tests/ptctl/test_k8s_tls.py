"""``python -m ptctl.k8s_tls``: the files the production overlay makes the TLS Secrets from
(that the overlay builds them is tests/deploy/test_k8s_manifests.py's)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from ptctl.launcher import CONTEXTS
from ptctl.tls import service_name


def test_it_writes_every_part_s_files_private_to_their_owner(tmp_path: Path) -> None:
    out = tmp_path / "secrets" / "tls"
    result = subprocess.run(
        [sys.executable, "-m", "ptctl.k8s_tls", "--out", str(out), "--public-name", "api.example"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert str(out / "ca.pem") in result.stdout
    for part in ("ca", "gateway", "envoy", *(service_name(c) for c in CONTEXTS)):
        assert (out / f"{part}.pem").is_file() and (out / f"{part}-key.pem").is_file(), part
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
