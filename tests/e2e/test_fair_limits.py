"""Fair limits at the gateway: each verified subject has a bucket of its own, and each
client address for calls without a valid token, inside a global ceiling. A customer (or
a caller without a token) flooding PlaceOrder leaves another customer's modest calls
served.

A platform of its own (order_svc only) with small buckets, so a flood is quick."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.conftest import fresh_platform
from tests.helpers import bearer

LIMITS = RateLimitSettings(
    burst=60,
    per_second=60,
    client_burst=10,
    client_per_second=10,
    address_burst=10,
    address_per_second=10,
)
HONEST_CALLS = 20
HONEST_INTERVAL_S = 0.25
"""Four calls a second: well inside a customer's own bucket."""


@pytest.fixture(scope="module")
def fair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    var_dir: Path = tmp_path_factory.mktemp("fair-limits")
    gateway = GatewaySettings(rate_limit=LIMITS)
    with fresh_platform(var_dir, contexts=["order"], gateway=gateway) as platform:
        yield platform


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


class Flood:
    """Two threads sending PlaceOrder as fast as they can with ``metadata``."""

    def __init__(self, platform: Platform, metadata: tuple[tuple[str, str], ...]) -> None:
        self.platform = platform
        self.metadata = metadata
        self.codes: list[grpc.StatusCode] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(2)]

    def _run(self) -> None:
        with grpc.insecure_channel(self.platform.gateway_address) as channel:
            orders = pb_grpc.OrderServiceStub(channel)
            request = pb.PlaceOrderRequest(customer_name="Mallory", class_name="Flood")
            while not self._stop.is_set():
                self.codes.append(
                    code_of(lambda: orders.PlaceOrder(request, metadata=self.metadata, timeout=5))
                )

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def honest_calls(platform: Platform, subject: str) -> list[grpc.StatusCode]:
    """A customer's modest PlaceOrder calls, one every HONEST_INTERVAL_S."""
    auth = bearer(platform.token("customer", subject))
    codes = []
    with grpc.insecure_channel(platform.gateway_address) as channel:
        orders = pb_grpc.OrderServiceStub(channel)
        for n in range(HONEST_CALLS):
            request = pb.PlaceOrderRequest(
                customer_name="Bob", class_name=f"Yoga {n}", request_id=str(uuid.uuid4())
            )
            codes.append(code_of(lambda r=request: orders.PlaceOrder(r, metadata=auth, timeout=5)))
            time.sleep(HONEST_INTERVAL_S)  # the pace of a modest client, not a wait for state
    return codes


def served(codes: list[grpc.StatusCode]) -> float:
    return codes.count(grpc.StatusCode.OK) / len(codes)


@pytest.mark.parametrize("flooder", ["customer", "no token", "bad token"])
def test_a_flood_leaves_another_customer_at_least_90_percent_served(
    fair: Platform, flooder: str
) -> None:
    metadata = {
        "customer": bearer(fair.token("customer", "mallory")),
        "no token": (),
        "bad token": bearer("not.a.token"),
    }[flooder]
    with Flood(fair, tuple(metadata)) as flood:
        codes = honest_calls(fair, f"bob-{flooder.replace(' ', '-')}")
    assert served(codes) >= 0.9, codes
    refused = flood.codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert refused > len(flood.codes) / 2, "the flood itself is held to its own bucket"


def test_each_customer_has_a_bucket_of_their_own(fair: Platform) -> None:
    """One customer's burst over their bucket is refused; another's is served in full."""
    with grpc.insecure_channel(fair.gateway_address) as channel:
        orders = pb_grpc.OrderServiceStub(channel)

        def burst(subject: str) -> list[grpc.StatusCode]:
            auth = bearer(fair.token("customer", subject))
            return [
                code_of(lambda: orders.ListOrders(pb.ListOrdersRequest(), metadata=auth, timeout=5))
                for _ in range(LIMITS.client_burst * 3)
            ]

        first = burst("carol")
        second = burst("dave")[: LIMITS.client_burst]
    assert first.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= LIMITS.client_burst
    assert second == [grpc.StatusCode.OK] * LIMITS.client_burst
