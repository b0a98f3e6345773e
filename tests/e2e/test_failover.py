"""Invisible failovers at the gateway: with two replicas of a service, a replica killed
or frozen under load costs no client call. Reads and creations with a request id are
retried on the other replica (reset, UNAVAILABLE, per-try timeout); a creation without
one is keyed on the gateway's request id, so its retry creates nothing twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import Platform, PlatformConfig, grpc_serving
from ptctl.pages import every_page
from ptctl.public_routes import CLIENT_ROUTING_HEADERS
from ptplatform.manager.v1 import manager_service_pb2 as manager
from tests.gateway_calls import GatewayCalls
from tests.helpers import metric, wait_for
from tests.load import CallLoad

CONTEXTS = ("order", "manager", "trainer", "status")
GATEWAY = GatewaySettings(rate_limit=RateLimitSettings.unlimited())
ROUTES = GATEWAY.routes
MARGIN_S = 1.5
"""A frozen replica costs a call at most its per-try timeout, one retry and this."""
FROZEN_S = 4.0
"""Long enough for the health checks (1 s, two failures) to mark the replica down."""
HOSTILE = (
    ("x-envoy-upstream-rq-timeout-ms", "1"),
    ("x-envoy-upstream-rq-per-try-timeout-ms", "1"),
    ("x-envoy-max-retries", "0"),
    ("x-envoy-retry-on", "connect-failure"),
)
"""What a caller might send to change the gateway's timeouts and retries: removed."""
assert {name for name, _ in HOSTILE} <= set(CLIENT_ROUTING_HEADERS)
PLACE_ORDER = {"grpc_service": "ptplatform.order.v1.OrderService", "grpc_method": "PlaceOrder"}


def replicated(
    tmp_path: Path, postgres_databases: Callable[[], str], contexts: tuple[str, ...]
) -> PlatformConfig:
    """Two replicas of each context, each pair on a PostgreSQL database of its own."""
    databases = {context: postgres_databases() for context in contexts}
    return PlatformConfig.ephemeral(
        tmp_path,
        contexts=list(contexts),
        replicas=dict.fromkeys(contexts, 2),
        database_urls={context: [url, url] for context, url in databases.items()},
        gateway=GATEWAY,
    )


@pytest.fixture
def everything_twice(tmp_path: Path, postgres_databases: Callable[[], str]) -> Iterator[Platform]:
    with Platform(replicated(tmp_path, postgres_databases, CONTEXTS)) as platform:
        yield platform


@pytest.fixture
def answers_lost_on_one_replica(
    tmp_path: Path, postgres_databases: Callable[[], str]
) -> Iterator[Platform]:
    """Two order_svc replicas; the first commits each PlaceOrder and never answers."""
    config = replicated(tmp_path, postgres_databases, ("order",))
    config.service_modules["order"] = "tests.fault_injection.order_svc"
    config.service_env["PT_FAULT_LOSE_ANSWERS_ON_PORT"] = str(config.service_ports["order"][0])
    with Platform(config) as platform:
        yield platform


@pytest.fixture
def orders_twice(tmp_path: Path, postgres_databases: Callable[[], str]) -> Iterator[Platform]:
    with Platform(replicated(tmp_path, postgres_databases, ("order",))) as platform:
        yield platform


def calls_of(platform: Platform, channel: grpc.Channel, customer: str) -> GatewayCalls:
    """The load's calls as ``customer``; its GetOrder carries the headers a hostile caller
    would send to change the gateway's timeouts and retries."""
    return GatewayCalls(
        channel,
        platform.gateway_url,
        platform.token("customer", customer),
        platform.token("manager", "failover-manager"),
        read_metadata=HOSTILE,
    )


def gateway_sees_all_healthy(platform: Platform) -> None:
    wait_for(platform.admin.healthy, timeout=20, what="Envoy: every replica healthy")


def describe(failures: list[object]) -> str:
    return "\n".join(map(str, failures[:10]))


def test_killing_a_replica_of_each_service_in_turn_fails_no_call(
    everything_twice: Platform,
) -> None:
    platform = everything_twice
    gateway_sees_all_healthy(platform)
    with grpc.insecure_channel(platform.gateway_address) as channel:
        calls = calls_of(platform, channel, "failover-killed")
        load = CallLoad(
            [
                calls.place_order,
                calls.get_order,
                calls.list_trainers,
                calls.list_orders,
                calls.register_trainer,
                calls.list_schedules,
                calls.list_statuses,
            ],
            threads=3,
        )
        with load:
            load.wait_for_calls(30)
            for context in CONTEXTS:
                victim = platform.services[context][1]
                victim.kill()
                load.wait_for_calls(20)
                victim.start()
                platform.wait_service(context)
                gateway_sees_all_healthy(platform)
                load.wait_for_calls(20)
        listed = calls.orders_listed()
        trainers = list(
            every_page(
                lambda page: calls.managers.ListTrainers(page, metadata=calls.manager),
                manager.ListTrainersRequest(),
                "trainers",
            )
        )

    assert load.failures == [], describe(load.failures)
    assert len(calls.placed) > 0 and len(calls.registered) > 0
    # every creation answered made exactly one record: no duplicate for any request id
    assert sorted(o.order_id for o in listed) == sorted(
        [calls.first.order_id, *calls.placed.values()]
    )
    by_name = sorted(t.trainer_id for t in trainers if t.name.startswith("Coach "))
    assert by_name == sorted(calls.registered.values())


def test_a_frozen_replica_delays_calls_by_no_more_than_one_try(orders_twice: Platform) -> None:
    platform = orders_twice
    gateway_sees_all_healthy(platform)
    frozen = platform.services["order"][0].process
    assert frozen is not None
    bound = {
        "get_order": ROUTES.read_per_try_timeout_s + MARGIN_S,
        "list_orders": ROUTES.list_per_try_timeout_s + MARGIN_S,
        "place_order": ROUTES.create_per_try_timeout_s + MARGIN_S,
        "get_order_over_rest": ROUTES.read_per_try_timeout_s + MARGIN_S,
        "place_order_over_rest": ROUTES.create_per_try_timeout_s + MARGIN_S,
    }
    with grpc.insecure_channel(platform.gateway_address) as channel:
        calls = calls_of(platform, channel, "failover-frozen")
        load = CallLoad(
            [
                calls.place_order,
                calls.get_order,
                calls.list_orders,
                calls.get_order_over_rest,
                calls.place_order_over_rest,
            ],
            threads=3,
        )
        with load:
            load.wait_for_calls(30)
            # frozen between calls: a transaction frozen half-way would hold its rows
            # (docs/resilience.md, "A frozen replica")
            with load.paused():
                os.kill(frozen.pid, signal.SIGSTOP)
            try:
                mark = load.mark()
                frozen_until = time.monotonic() + FROZEN_S
                while time.monotonic() < frozen_until:
                    load.wait_for_calls(1)
                while_frozen = load.since(mark)
            finally:
                os.kill(frozen.pid, signal.SIGCONT)
            gateway_sees_all_healthy(platform)
            load.wait_for_calls(20)
        listed = calls.orders_listed()

    assert load.failures == [], describe(load.failures)
    slow = [o for o in while_frozen if o.seconds > bound[o.call]]
    assert slow == [], describe(slow)
    assert sorted(o.order_id for o in listed) == sorted(
        [calls.first.order_id, *calls.placed.values()]
    )


def test_a_creation_without_request_id_whose_first_try_is_frozen_makes_one_order(
    orders_twice: Platform,
) -> None:
    platform = orders_twice
    gateway_sees_all_healthy(platform)
    frozen = platform.services["order"][0].process
    assert frozen is not None
    with grpc.insecure_channel(platform.gateway_address) as channel:
        calls = calls_of(platform, channel, "failover-no-request-id")

        def place() -> tuple[str, float]:
            started = time.monotonic()
            placed = calls.orders.PlaceOrder(calls.order_request(), metadata=calls.customer)
            return placed.order_id, time.monotonic() - started

        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            # two at once on one connection: round robin sends one of them to the frozen
            # replica, where its first try times out and its retry goes to the other
            with ThreadPoolExecutor(2) as pool:
                answers = [f.result(timeout=30) for f in [pool.submit(place) for _ in "ab"]]
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        assert max(seconds for _, seconds in answers) >= ROUTES.create_per_try_timeout_s

        # the lost try reaches the resumed replica: it ends (cancelled, or answered with
        # the order its retry made) before anything is counted
        address = platform.service_address("order", 0)
        wait_for(lambda: grpc_serving(address), timeout=10, what="the frozen replica answers")

        def no_place_order_in_flight() -> bool:
            # the duration is observed for every call that ended, cancelled ones included
            started = metric(platform, "order", "grpc_server_started_total", 0, **PLACE_ORDER)
            ended = metric(
                platform, "order", "grpc_server_handling_seconds_count", 0, **PLACE_ORDER
            )
            return started == ended

        wait_for(no_place_order_in_flight, timeout=10, what="the lost try ended")
        listed = calls.orders_listed()

    assert sorted(o.order_id for o in listed) == sorted(
        [calls.first.order_id, *(order_id for order_id, _ in answers)]
    )


def test_a_creation_without_request_id_whose_answer_is_lost_is_not_made_twice(
    answers_lost_on_one_replica: Platform,
) -> None:
    """The first try commits on one replica and its answer never comes: the retry on the
    other replica carries the same gateway request id and answers with that order."""
    platform = answers_lost_on_one_replica
    gateway_sees_all_healthy(platform)
    with grpc.insecure_channel(platform.gateway_address) as channel:
        calls = calls_of(platform, channel, "failover-lost-answer")
        answered = [calls.first.order_id]
        lost_first_try = False
        for _ in range(4):  # round robin: the first try of one of two lands on the replica
            started = time.monotonic()
            placed = calls.orders.PlaceOrder(calls.order_request(), metadata=calls.customer)
            answered.append(placed.order_id)
            if time.monotonic() - started >= ROUTES.create_per_try_timeout_s:
                lost_first_try = True
                break
        listed = calls.orders_listed()

    assert lost_first_try, "no first try landed on the replica that loses answers"
    assert sorted(o.order_id for o in listed) == sorted(answered)
