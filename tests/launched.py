"""``ptctl run`` as a user starts it, as a subprocess: every port moved to a free one,
its own var dir, its output in a file; and a scan for what it left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptctl.launcher import CONTEXTS, PLATFORM_FILE, free_port
from tests.helpers import wait_for


def free_ports_env() -> dict[str, str]:
    """Every PT_*_PORT ``PlatformConfig.defaults`` reads, on a free port."""
    env = {
        "PT_NATS_PORT": free_port(),
        "PT_GATEWAY_PORT": free_port(),
        "PT_INTERNAL_PORT": free_port(),
        "PT_INTERNAL_FAULT_PORT": free_port(),
        "PT_DEV_SIGN_IN_PORT": free_port(),
    }
    for context in CONTEXTS:
        env[f"PT_{context.upper()}_PORT"] = free_port()
        env[f"PT_{context.upper()}_METRICS_PORT"] = free_port()
    return {name: str(port) for name, port in env.items()}


@dataclass
class Launched:
    """A ``ptctl run`` subprocess and where it keeps its state."""

    process: subprocess.Popen[bytes]
    var_dir: Path
    output: Path
    env: dict[str, str]

    @property
    def manifest_file(self) -> Path:
        return self.var_dir / PLATFORM_FILE

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest_file.read_text())
        return data

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_up(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for "PtPlatform is up"; the manifest it wrote."""

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"ptctl run exited {self.process.returncode}:\n{self.text()}")
            return "PtPlatform is up" in self.text()

        wait_for(up, timeout=timeout, interval=0.2, what="ptctl run up")
        return self.manifest()

    def ptctl(
        self, *argv: str, timeout: float = 180.0, environ: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Another ptctl command against this platform (same var dir and ports)."""
        return subprocess.run(
            [sys.executable, "-m", "ptctl.cli", *argv],
            env={**self.env, **(environ or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@contextmanager
def ptctl_run(
    var_dir: Path, *argv: str, environ: Mapping[str, str] | None = None
) -> Iterator[Launched]:
    """``ptctl run ARGV`` on free ports under ``var_dir``; whatever is left of it (and of
    its children, found by their var dir) is SIGKILLed at the end."""
    var_dir.mkdir(parents=True, exist_ok=True)
    output = var_dir.parent / f"{var_dir.name}-ptctl-run.out"
    env = {**os.environ, "PT_VAR_DIR": str(var_dir), **free_ports_env(), **(environ or {})}
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ptctl.cli", "run", *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    launched = Launched(process, var_dir, output, env)
    try:
        yield launched
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pid in processes_of(var_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)


def processes_of(var_dir: Path) -> list[int]:
    """Live processes whose command line or environment names ``var_dir`` (zombies,
    which hold nothing, left out)."""
    needle = str(var_dir.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
