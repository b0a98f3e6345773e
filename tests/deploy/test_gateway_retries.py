"""The public routes as rendered: safe calls (reads, creations with a request id) are
retried on another replica on reset, UNAVAILABLE and per-try timeout; other writes only
when they never reached a service; a caller cannot change either."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ptctl.envoy import PUBLIC_SERVICES
from ptctl.http_rules import PublicApi
from ptctl.launcher import DESCRIPTOR, Platform, PlatformConfig
from ptctl.public_routes import (
    CLIENT_ROUTING_HEADERS,
    CallKind,
    PublicRouteSettings,
    unary_methods,
)
from ptkit.config import Env

UNSAFE = {
    "/ptplatform.order.v1.OrderService/CancelOrder",
    "/ptplatform.manager.v1.ManagerService/AssignTrainer",
    "/ptplatform.trainer.v1.TrainerService/ConfirmSchedule",
    "/ptplatform.trainer.v1.TrainerService/RegisterClassResult",
    "/ptplatform.trainer.v1.TrainerService/CancelSchedule",
}
READS = {
    f"/ptplatform.{service}/{method}"
    for service, methods in {
        "order.v1.OrderService": ("GetOrder", "ListOrders"),
        "manager.v1.ManagerService": ("ListTrainers", "GetAssignment", "ListAssignments"),
        "trainer.v1.TrainerService": ("GetSchedule", "ListSchedules"),
        "status.v1.StatusService": (
            "GetOrderStatus",
            "ListOrderStatuses",
            "ListClassResults",
            "ListNotifications",
        ),
    }.items()
    for method in methods
}
CREATIONS = {
    "/ptplatform.order.v1.OrderService/PlaceOrder",
    "/ptplatform.manager.v1.ManagerService/RegisterTrainer",
}


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    platform = Platform(PlatformConfig.defaults(tmp_path_factory.mktemp("var"), Env({})))
    config: dict[str, Any] = yaml.safe_load(platform.render_envoy_config())
    return config


def manager(envoy: dict[str, Any]) -> dict[str, Any]:
    [gateway] = [lst for lst in envoy["static_resources"]["listeners"] if lst["name"] == "gateway"]
    config: dict[str, Any] = gateway["filter_chains"][0]["filters"][0]["typed_config"]
    return config


def routes(envoy: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = manager(envoy)["route_config"]["virtual_hosts"][0]["routes"]
    return found


def by_path(envoy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The routes of one gRPC method each."""
    return {
        r["match"]["path"]: r["route"]
        for r in routes(envoy)
        if r["match"].get("path", "").startswith("/ptplatform.")
    }


def test_reads_and_creations_with_a_request_id_are_retried_on_another_replica(
    envoy: dict[str, Any],
) -> None:
    methods = by_path(envoy)
    settings = PublicRouteSettings()
    safe = {path: methods[path] for path in READS | CREATIONS}
    for path, route in safe.items():
        retry = route["retry_policy"]
        assert retry["retry_on"] == "reset,unavailable,connect-failure,refused-stream", path
        assert retry["num_retries"] == 2
        assert [p["name"] for p in retry["retry_host_predicate"]] == [
            "envoy.retry_host_predicates.previous_hosts"
        ]
        assert retry["host_selection_retry_max_attempts"] == 3
        assert route["timeout"] == "15.0s", "the budget of all tries"
        assert route["max_stream_duration"]["grpc_timeout_header_max"] == "15.0s"
    per_try = {path: route["retry_policy"]["per_try_timeout"] for path, route in safe.items()}
    assert per_try["/ptplatform.order.v1.OrderService/GetOrder"] == (
        f"{settings.read_per_try_timeout_s}s"
    )
    assert per_try["/ptplatform.order.v1.OrderService/ListOrders"] == (
        f"{settings.list_per_try_timeout_s}s"
    )
    assert per_try["/ptplatform.order.v1.OrderService/PlaceOrder"] == (
        f"{settings.create_per_try_timeout_s}s"
    )


def test_writes_without_an_idempotency_key_are_retried_only_when_never_sent(
    envoy: dict[str, Any],
) -> None:
    methods = by_path(envoy)
    for path in UNSAFE:
        route = methods[path]
        assert route["retry_policy"]["retry_on"] == "connect-failure,refused-stream", path
        assert "per_try_timeout" not in route["retry_policy"]
        assert route["timeout"] == "5.0s"
        assert route["max_stream_duration"] == {
            "max_stream_duration": "15.0s",
            "grpc_timeout_header_max": "5.0s",
        }


def test_every_unary_method_has_its_route_and_each_service_a_fallback(
    envoy: dict[str, Any],
) -> None:
    api = PublicApi.load(DESCRIPTOR, tuple(PUBLIC_SERVICES.values()))
    clusters = {service: name for name, service in PUBLIC_SERVICES.items()}
    listed = routes(envoy)
    assert list(by_path(envoy)) == [method.grpc_path for method in unary_methods(api, clusters)]
    kinds = {m.grpc_path: m.kind for m in unary_methods(api, clusters)}
    assert {path for path, kind in kinds.items() if kind is CallKind.WRITE} == UNSAFE
    assert {path for path, kind in kinds.items() if kind is CallKind.CREATE} == CREATIONS
    assert {path for path, kind in kinds.items() if kind.safe} == READS | CREATIONS
    # every REST GET is a read: the HTTP semantics and the retry policy agree
    gets = {rule.grpc_path for rule in api.rules if rule.verb == "GET"}
    assert {kinds[path] for path in gets} <= {CallKind.READ, CallKind.LIST}
    # a method of no route above falls back to its service's prefix, never retried once sent
    prefixes = {r["match"]["prefix"]: r for r in listed if "prefix" in r["match"]}
    for name, service in PUBLIC_SERVICES.items():
        fallback = prefixes[f"/{service}/"]["route"]
        assert fallback["cluster"] == name
        assert fallback["retry_policy"]["retry_on"] == "connect-failure,refused-stream"
        assert listed.index(prefixes[f"/{service}/"]) > max(
            listed.index(r) for r in listed if r["match"].get("path", "").startswith(f"/{service}/")
        )
    watch = prefixes["/ptplatform.status.v1.StatusService/WatchNotifications"]
    assert watch["route"] == {"cluster": "status_watch", "timeout": "0s", "idle_timeout": "0s"}
    assert "/ptplatform.status.v1.StatusService/WatchNotifications" not in kinds


def test_a_caller_cannot_choose_its_retries_or_timeouts(envoy: dict[str, Any]) -> None:
    [early] = manager(envoy)["early_header_mutation_extensions"]
    removed = {m["remove"] for m in early["typed_config"]["mutations"] if "remove" in m}
    assert set(CLIENT_ROUTING_HEADERS) <= removed
    assert {"x-envoy-retry-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms"} <= removed
    assert manager(envoy)["use_remote_address"] is True


def test_per_try_timeouts_count_towards_ejecting_a_replica(envoy: dict[str, Any]) -> None:
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    for name in PUBLIC_SERVICES:
        outlier = clusters[name]["outlier_detection"]
        assert outlier["consecutive_gateway_failure"] == 3
        assert outlier["enforcing_consecutive_gateway_failure"] == 100
        # not split: a per-try timeout is a gateway failure (504) of the host
        assert "split_external_local_origin_errors" not in outlier
        [health] = clusters[name]["health_checks"]
        assert health["grpc_health_check"] == {"service_name": ""}
        assert health["interval"] == "1.0s"


def test_every_call_in_flight_on_a_dying_replica_may_retry(envoy: dict[str, Any]) -> None:
    """A retry budget (a share of the requests in flight), not a fixed count: with two
    replicas, the half of the calls the dead one held all get their retry."""
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    for name in PUBLIC_SERVICES:
        [threshold] = clusters[name]["circuit_breakers"]["thresholds"]
        assert threshold["retry_budget"]["budget_percent"]["value"] >= 50
        assert threshold["retry_budget"]["min_retry_concurrency"] >= 32
    [internal] = clusters["trainer_internal"]["circuit_breakers"]["thresholds"]
    assert "retry_budget" not in internal, "the internal call keeps its small fixed budget"
