"""The failover tests' load: every call's outcome is recorded, and a pause means no call
in flight."""

from __future__ import annotations

import threading

import grpc
import pytest

from tests.load import CallLoad


class Refused(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "no healthy upstream"


def test_every_call_is_recorded_with_its_code() -> None:
    def answers() -> None:
        return None

    def refuses() -> None:
        raise Refused()

    def breaks() -> None:
        raise ValueError("not a gRPC error")

    with CallLoad([answers, refuses, breaks], threads=3) as load:
        load.wait_for_calls(30, timeout=10)
    failures = load.failures
    assert load.ok > 0
    assert {(f.call, f.code) for f in failures} == {
        ("refuses", grpc.StatusCode.UNAVAILABLE),
        ("breaks", None),
    }
    assert load.ok + len(failures) == len(load.outcomes)


def test_inside_a_pause_no_call_is_in_flight() -> None:
    in_flight = 0
    lock = threading.Lock()
    seen_during_pause: list[int] = []

    def call() -> None:
        nonlocal in_flight
        with lock:
            in_flight += 1
        with lock:
            in_flight -= 1

    with CallLoad([call], threads=4) as load:
        load.wait_for_calls(20, timeout=10)
        with load.paused():
            mark = load.mark()
            seen_during_pause.append(in_flight)
            assert load.since(mark) == []
        load.wait_for_calls(20, timeout=10)
    assert seen_during_pause == [0]


def test_a_load_without_calls_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one call"):
        CallLoad([])
