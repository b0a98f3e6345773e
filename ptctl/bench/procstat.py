"""CPU time and memory of a process, read from ``/proc`` (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system time the process has used so far (``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # the command name (field 2) may hold spaces: the fields after it follow its ")"
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def memory_mib(pid: int, key: str) -> float:
    """A ``/proc/<pid>/status`` figure in MiB: ``VmRSS`` (resident now), ``VmHWM`` (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """Seconds of CPU so far of each named process (with its descendants)."""
    return {name: tree_cpu_seconds(pid) for name, pid in pids.items()}


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of the process and of its living descendants (a service that
    runs workers of its own is counted whole)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except OSError:
            continue  # ended between the listing and the read
        todo.extend(children.get(current, []))
    return total


def matching_cpu_seconds(marker: str) -> float:
    """:func:`cpu_seconds` of every process whose command line holds ``marker``."""
    total = 0.0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                total += cpu_seconds(int(cmdline.parent.name))
        except OSError:
            continue
    return total
