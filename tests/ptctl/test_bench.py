"""``ptctl bench --quick --profile``: every figure measured and written, a flame graph per
service, nothing left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ptctl.bench.procstat import cpu_seconds, memory_mib
from ptctl.bench.propagation import summarize

BENCH_TIMEOUT_S = 150
pytestmark = pytest.mark.timeout(BENCH_TIMEOUT_S + 30)
BENCH_MODULES = ("ptctl.bench.noop", "ptctl.bench.load")


def processes_of(marker: str) -> list[str]:
    """Command lines of the processes whose command line or PT_VAR_DIR mentions ``marker``
    or that run one of the bench's own modules."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        var_dirs = [e for e in environ if e.startswith(b"PT_VAR_DIR=")]
        if (
            marker in command
            or any(marker.encode() in e for e in var_dirs)
            or any(module in command for module in BENCH_MODULES)
        ):
            found.append(command)
    return found


def test_a_quick_bench_writes_every_figure_and_leaves_no_process(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the bench's temporary directory is made in here
    scratch.mkdir()
    out = tmp_path / "out"
    finished = subprocess.run(
        [sys.executable, "-m", "ptctl.cli", "bench", "--quick", "--profile", "--out", str(out)],
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "PlaceOrder through the gateway" in finished.stdout
    result = json.loads((out / "latest.json").read_text())
    assert result["meta"]["mode"] == "quick"
    assert result["meta"]["database"] == "sqlite"
    assert [row["concurrency"] for row in result["place_order"]] == [1, 16, 64]
    for row in result["place_order"]:
        assert row["platform"]["rps"] > 0 and row["noop"]["rps"] > 0 and row["ratio"] > 0
        assert row["platform"]["p99_ms"] >= row["platform"]["p50_ms"] > 0
    cpu = result["cpu_per_order"]
    assert {"order_svc", "status_svc", "envoy", "nats-server"} <= set(cpu["processes"])
    assert cpu["orders"] > 0 and cpu["sum_settled_ms"] > 0 and cpu["last_order_seen"]
    assert result["propagation"] and all(row["seen"] > 0 for row in result["propagation"])
    assert result["flow"]["completed"] == result["flow"]["flows"] > 0
    assert result["flow"]["flows_per_s"] > 0
    assert all(m["peak_hwm_mib"] >= m["idle_rss_mib"] > 0 for m in result["memory"].values())
    assert set(result["profiles"]) == {"order_svc", "manager_svc", "trainer_svc", "status_svc"}
    for svg in result["profiles"].values():
        assert Path(svg).read_text().lstrip().startswith("<?xml"), svg
    assert (out / "latest.png").read_bytes().startswith(b"\x89PNG")
    assert list(out.glob("bench-*.json")) and list(out.glob("bench-*.png"))
    assert processes_of(str(scratch)) == []
    assert list(scratch.iterdir()) == []


def test_lag_that_grows_with_the_run_is_not_bounded() -> None:
    steady = [(n / 50, 0.030) for n in range(100)]
    growing = [(n / 50, 0.030 + n * 0.01) for n in range(100)]
    load = {"offered": 100, "placed": 100, "errors": {}}

    assert summarize(50, steady, 0, load)["bounded"]
    assert not summarize(50, growing, 0, load)["bounded"]
    assert not summarize(50, steady, 1, load)["bounded"]


def test_a_platform_answering_slower_than_offered_did_not_keep_up() -> None:
    load = {"offered": 100, "placed": 100, "errors": {}}
    on_time = [(n / 50, 0.030) for n in range(100)]
    late = [(n / 25, 0.030) for n in range(100)]

    assert summarize(50, on_time, 0, load)["kept_up"]
    assert not summarize(50, late, 0, load)["kept_up"]
    assert not summarize(50, on_time, 0, load | {"errors": {"UNAVAILABLE": 1}})["kept_up"]


def test_cpu_and_memory_of_a_process_are_read_from_proc() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert memory_mib(os.getpid(), "VmHWM") >= memory_mib(os.getpid(), "VmRSS") > 0
