"""Continuous client load for failover tests: a few threads make calls, one after the
other, until the load stops, and every outcome is recorded (how long, which gRPC code).

    with CallLoad([get_order, list_orders, place_order], threads=3) as load:
        load.wait_for_calls(50)
        ...  # kill, freeze or restart something
    assert load.failures == []

Each call is a function of no arguments that raises on failure (a gRPC stub call, bound
to its request and metadata). Thread ``i`` starts with call ``i`` and takes them in turn,
so every kind of call keeps running whatever the number of threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

import grpc


@dataclass(frozen=True)
class Outcome:
    call: str
    """The call's ``__name__``."""
    seconds: float
    code: grpc.StatusCode | None
    """OK, a gRPC status, or None for an error that is not a gRPC one."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK


class CallLoad:
    def __init__(self, calls: Sequence[Callable[[], object]], threads: int = 3) -> None:
        if not calls:
            raise ValueError("a load needs at least one call")
        self.calls = list(calls)
        self.threads = threads
        self._outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._in_flight = 0
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> CallLoad:
        self._workers = [
            threading.Thread(target=self._work, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the calls in flight finish, then stop the threads."""
        self._stop.set()
        self._running.set()
        for worker in self._workers:
            worker.join(timeout)
        stuck = [w.name for w in self._workers if w.is_alive()]
        if stuck:
            raise TimeoutError(f"load threads still calling after {timeout} s: {stuck}")

    # ---- what happened -----------------------------------------------------------------
    @property
    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    @property
    def ok(self) -> int:
        return sum(outcome.ok for outcome in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def mark(self) -> int:
        """A position in the outcomes: ``since(mark)`` is what ended after it."""
        with self._lock:
            return len(self._outcomes)

    def since(self, mark: int) -> list[Outcome]:
        with self._lock:
            return self._outcomes[mark:]

    def wait_for_calls(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` more calls ended (whatever their outcome)."""
        target = self.mark() + count
        deadline = time.monotonic() + timeout
        while self.mark() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} calls did not end within {timeout} s")
            time.sleep(0.01)

    @contextmanager
    def paused(self, timeout: float = 30.0) -> Iterator[None]:
        """No call in flight inside the block: new calls wait, the running ones end first."""
        self._running.clear()
        deadline = time.monotonic() + timeout
        try:
            while True:
                with self._lock:
                    if self._in_flight == 0:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"calls still in flight after {timeout} s")
                time.sleep(0.005)
            yield
        finally:
            self._running.set()

    # ---- the threads -------------------------------------------------------------------
    def _work(self, n: int) -> None:
        turn = n
        while not self._stop.is_set():
            call = self.calls[turn % len(self.calls)]
            turn += 1
            if not self._begin():
                continue
            started = time.monotonic()
            try:
                call()
            except grpc.RpcError as error:
                code, detail = error.code(), error.details() or ""
            except Exception as error:  # recorded: a load reports failures, never hides them
                code, detail = None, repr(error)
            else:
                code, detail = grpc.StatusCode.OK, ""
            name = getattr(call, "__name__", repr(call))
            outcome = Outcome(name, time.monotonic() - started, code, detail)
            with self._lock:
                self._in_flight -= 1
                self._outcomes.append(outcome)

    def _begin(self) -> bool:
        """Wait while paused; False when the load stops meanwhile."""
        while True:
            self._running.wait()
            if self._stop.is_set():
                return False
            with self._lock:
                if self._running.is_set():
                    self._in_flight += 1
                    return True
