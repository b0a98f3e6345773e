"""py-spy attached to running services: one flame graph (SVG) per process.

py-spy (PyPI) samples a process from outside, so the services run unchanged; it needs
the right to trace them (root, or ``CAP_SYS_PTRACE`` in a container). A profile that
cannot be taken is reported, not fatal: the bench's figures do not depend on it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLES_PER_SECOND = 100
START_SECONDS = 1.0
"""How long py-spy takes to attach before the load it should see begins."""


def py_spy() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


@contextmanager
def recording(pids: dict[str, int], out: Path, seconds: float) -> Iterator[dict[str, str]]:
    """Record each process of ``pids`` while the block runs its ``seconds`` of load; the
    dict it gives holds, once the block is left, each process's SVG path or why it has
    none."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    spies = {
        name: subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds + START_SECONDS))),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--format",
                "flamegraph",
                "--nonblocking",
                # idle samples too: a service the load leaves idle (trainer_svc under
                # PlaceOrder) still gets its graph, the loop's waiting, not an error
                "--idle",
                "--output",
                str(out / f"{name}.svg"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, pid in pids.items()
    }
    try:
        time.sleep(START_SECONDS)
        yield written
    finally:
        for name, spy in spies.items():
            try:
                _, errors = spy.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, errors = spy.communicate()
            svg = out / f"{name}.svg"
            written[name] = str(svg) if spy.returncode == 0 and svg.exists() else errors.strip()
