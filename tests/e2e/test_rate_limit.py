"""The gateway's local rate limit: a burst over the limit is refused (429 over HTTP,
RESOURCE_EXHAUSTED over gRPC) and the platform serves again once the bucket refills.

A platform of its own (order_svc only) with a small bucket, so the session platform's
other tests never meet the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.conftest import fresh_platform
from tests.e2e.rest import Rest, access_log_entry
from tests.helpers import bearer, wait_for

BURST = 5
REFILL_PER_SECOND = 2
RESOURCE_EXHAUSTED = 8


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    gateway = GatewaySettings(
        rate_limit=RateLimitSettings(burst=BURST, per_second=REFILL_PER_SECOND)
    )
    var_dir: Path = tmp_path_factory.mktemp("rate-limited")
    with fresh_platform(var_dir, contexts=["order"], gateway=gateway) as platform:
        yield platform


def rate_limited_count(platform: Platform) -> int:
    stats = platform.admin.stats("http_local_rate_limit.rate_limited$")
    return sum(int(stat.get("value", 0)) for stat in stats)


def test_the_limit_comes_from_the_gateway_settings(limited: Platform) -> None:
    config = limited.envoy_config.read_text()
    assert f"max_tokens: {BURST}\n" in config
    assert f"tokens_per_fill: {REFILL_PER_SECOND}\n" in config


def test_an_http_burst_over_the_limit_gets_429_then_the_gateway_serves_again(
    limited: Platform,
) -> None:
    rest = Rest(limited.gateway_url)
    token = limited.token("customer", "burst-http")
    before = rate_limited_count(limited)

    replies = [rest.get("/v1/orders", token) for _ in range(BURST * 4)]

    refused = [reply for reply in replies if reply.status == 429]
    assert len(refused) >= BURST * 2, [reply.status for reply in replies]
    assert {reply.status for reply in replies} <= {200, 429}
    for reply in refused:
        assert reply.headers["x-local-rate-limit"] == "true"
        assert reply.error() == (429, RESOURCE_EXHAUSTED, "local_rate_limited")
    assert rate_limited_count(limited) - before == len(refused)
    logged = wait_for(
        lambda: access_log_entry(limited, refused[-1].headers["x-request-id"]),
        what="access log line of a refused call",
    )
    assert (logged["status"], logged["flags"], logged["upstream"]) == (429, "RL", None)
    wait_for(
        lambda: rest.get("/v1/orders", token).status == 200,
        timeout=5,
        interval=0.1,
        what="a call served after the bucket refilled",
    )


def test_a_grpc_burst_over_the_limit_gets_resource_exhausted_then_ok(limited: Platform) -> None:
    auth = bearer(limited.token("customer", "burst-grpc"))
    with grpc.insecure_channel(limited.gateway_address) as channel:
        orders = pb_grpc.OrderServiceStub(channel)

        def code_of_one_call() -> grpc.StatusCode:
            try:
                orders.ListOrders(pb.ListOrdersRequest(), metadata=auth, timeout=5)
            except grpc.RpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        codes = [code_of_one_call() for _ in range(BURST * 4)]
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= BURST * 2, codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        wait_for(
            lambda: code_of_one_call() is grpc.StatusCode.OK,
            timeout=5,
            interval=0.1,
            what="a gRPC call served after the bucket refilled",
        )
