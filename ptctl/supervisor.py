"""The self-healing part of ``ptctl run``: a thread that restarts a child that exited.

Every ``interval`` it looks at each of :meth:`Platform.processes`. A child that exited
while the platform runs is logged (its name, exit code or signal, the delay) and started
again on its own ports after a delay that doubles from ``Backoff.first`` up to
``Backoff.most``; a child that stayed up ``Backoff.stable`` seconds starts the count
again. A restarted child is watched until its start-up check holds (a replica's gRPC
health SERVING, Envoy's admin live, a listening port), one check per round, so a slow
child never holds up the others. One that is not ready within ``ready_timeout`` is
killed and restarted with the next delay.

``ptctl restart`` (ptctl/restart.py) asks for a restart by leaving a request file named
for the child under ``<var>/restart-requests`` before it sends the child SIGTERM: such a
child is started again at once and its count starts again.

Only ``ptctl run`` supervises: a test that stops a service on purpose expects it to stay
down. Children die with the thread that forked them (ManagedProcess), so this thread
stays alive after :meth:`Supervisor.stop` until :meth:`Supervisor.release`, which
``ptctl run`` calls once the platform has stopped.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ptctl.launcher import ManagedProcess, Platform, StartupError

log = logging.getLogger(__name__)

RESTART_REQUESTS = "restart-requests"
"""Under the var dir: one empty file per child ``ptctl restart`` wants restarted now."""


def restart_request(var_dir: Path, name: str) -> Path:
    return var_dir / RESTART_REQUESTS / name


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts of a child that keeps exiting."""

    first: float = 0.5
    most: float = 30.0
    stable: float = 30.0
    """Up this long, a child's next exit counts as the first again."""

    def delay(self, attempt: int) -> float:
        """The delay before restart number ``attempt`` (0: the first) of a quick series."""
        return min(self.first * 2**attempt, self.most)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def describe_exit(status: int | None) -> str:
    """``exit code 3``, ``signal SIGKILL`` (Popen's returncode: minus the signal)."""
    if status is None:
        return "unknown exit"
    return f"signal {signal_name(-status)}" if status < 0 else f"exit code {status}"


@dataclass
class _Child:
    """What the supervisor knows of one child between rounds."""

    attempts: int = 0
    """Restarts in the current quick series (reset after Backoff.stable seconds up)."""
    restart_at: float | None = None
    """Down: when to start it again."""
    ready_by: float | None = None
    """Started again: the deadline of its start-up check."""
    restarts: int = 0


class Supervisor:
    """Watches a started platform's children from a thread of its own."""

    def __init__(
        self,
        platform: Platform,
        backoff: Backoff | None = None,
        interval: float = 0.1,
        ready_timeout: float = 60.0,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.platform = platform
        self.backoff = backoff or Backoff()
        self.interval = interval
        self.ready_timeout = ready_timeout
        self.announce = announce or (lambda line: print(line, flush=True))
        """Where a human-readable line about each restart goes (``ptctl run``'s stdout)."""
        self._children: dict[str, _Child] = {}
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        (platform.var_dir / RESTART_REQUESTS).mkdir(mode=0o700, exist_ok=True)

    def start(self) -> Supervisor:
        self.platform.supervised = True
        self.platform.write_manifest()
        self._thread.start()
        return self

    def halt(self) -> None:
        """Start nothing from now on, without waiting (safe in a signal handler)."""
        self._stopping.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Restart nothing from now on; returns once the thread has left its round (a
        child it is starting is left to the platform's stop)."""
        self.halt()
        self._idle.wait(timeout)

    @property
    def supervising(self) -> bool:
        """Its rounds run (started, not stopped)."""
        return self._thread.is_alive() and not self._idle.is_set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def release(self, timeout: float = 5.0) -> None:
        """Let the thread end: call after the platform stopped (see the module doc)."""
        self._stopping.set()
        self._released.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self.check()
                except Exception:  # a bug or an OS error must not end the supervision
                    log.exception("supervision round failed; the next one follows")
                self._stopping.wait(self.interval)
        finally:
            self._idle.set()
        self._released.wait()

    def check(self) -> None:
        """One round over every child."""
        changed = False
        for process in self.platform.processes():
            if self._stopping.is_set():
                return
            changed |= self._check(process, self._children.setdefault(process.name, _Child()))
        if changed:
            self.platform.write_manifest()

    def _check(self, process: ManagedProcess, child: _Child) -> bool:
        """Act on one child; True if it was started again (its pid changed)."""
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                return self._launch(process, child)
            return False
        if process.process is None:
            return False  # not started by the platform, or stopped on purpose
        if process.running:
            if child.ready_by is not None:
                self._watch_start_up(process, child, now)
            return False
        self._exited(process, child, now)
        return False

    def _exited(self, process: ManagedProcess, child: _Child, now: float) -> None:
        status = process.exit_status
        uptime = now - process.started_at
        process.reap(timeout=0)  # and kill what it left in its process group
        request = restart_request(self.platform.var_dir, process.name)
        requested = request.exists()
        request.unlink(missing_ok=True)
        if requested or uptime >= self.backoff.stable:
            child.attempts = 0
        delay = 0.0 if requested else self.backoff.delay(child.attempts)
        child.attempts += 0 if requested else 1
        child.ready_by = None
        child.restart_at = now + delay
        how = "restart requested" if requested else describe_exit(status)
        log.warning(
            "child exited, restarting",
            extra={
                "child": process.name,
                "exit_code": status if status is not None and status >= 0 else None,
                "signal": signal_name(-status) if status is not None and status < 0 else None,
                "requested": requested,
                "uptime_s": round(uptime, 1),
                "restart_delay_s": delay,
                "attempt": child.attempts,
            },
        )
        self.announce(f"{process.name} exited ({how}) after {uptime:.1f}s; restart in {delay:.1f}s")

    def _launch(self, process: ManagedProcess, child: _Child) -> bool:
        if self._stopping.is_set():
            return False
        child.restart_at = None
        try:
            self.platform.launch(process)
        except (StartupError, OSError) as error:
            delay = self.backoff.delay(child.attempts)
            child.attempts += 1
            child.restart_at = time.monotonic() + delay
            log.error(
                "child did not start",
                extra={"child": process.name, "error": str(error), "restart_delay_s": delay},
            )
            self.announce(f"{process.name} did not start ({error}); next try in {delay:.1f}s")
            return False
        child.ready_by = time.monotonic() + self.ready_timeout
        child.restarts += 1
        log.info("child started again", extra={"child": process.name, "pid": process.pid})
        return True

    def _watch_start_up(self, process: ManagedProcess, child: _Child, now: float) -> None:
        if self.platform.ready(process):
            child.ready_by = None
            took = now - process.started_at
            log.info(
                "child ready again",
                extra={"child": process.name, "pid": process.pid, "start_up_s": round(took, 2)},
            )
            self.announce(f"{process.name} is back (pid {process.pid}, ready in {took:.1f}s)")
        elif now > (child.ready_by or now):
            log.error(
                "child not ready in time, killing it",
                extra={"child": process.name, "ready_timeout_s": self.ready_timeout},
            )
            process.kill()
            delay = self.backoff.delay(child.attempts)
            child.attempts += 1
            child.ready_by = None
            child.restart_at = now + delay
            self.announce(
                f"{process.name} not ready after {self.ready_timeout:.0f}s; restart in {delay:.1f}s"
            )
