"""Which public calls the gateway may retry on another replica, and the route of each.

A call is safe to send twice when a second copy cannot change anything the first did not:
a read (AIP-131/132 standard methods, ``Get*`` and ``List*``), or a creation that carries
an idempotency key (a ``request_id`` field, AIP-155: the same key returns what the first
copy created). Safe calls are retried on reset, UNAVAILABLE and per-try timeout, on
another replica. Every other call is retried only when it never reached a service
(connect failure, refused stream). The kinds are read from the descriptor set, so a new
method is classified by its name and fields, never by a list kept here.
See docs/resilience.md, "Invisible failovers".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf import descriptor

from ptctl.http_rules import PublicApi

IDEMPOTENCY_FIELD = "request_id"
SAFE_RETRY_ON = "reset,unavailable,connect-failure,refused-stream"
"""``reset`` covers a per-try timeout as well as a dropped connection ("does not respond
at all: disconnect/reset/read timeout"); ``unavailable`` is the gRPC status."""
UNSENT_RETRY_ON = "connect-failure,refused-stream"
"""The request never reached a service: safe to send again whatever it does."""
PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {
        "@type": "type.googleapis.com/"
        "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
    },
}
BACK_OFF = {"base_interval": "0.025s", "max_interval": "0.25s"}
CLIENT_ROUTING_HEADERS = (
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-max-retries",
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-upstream-stream-duration-ms",
    "x-envoy-expected-rq-timeout-ms",
)
"""Router headers that would let a caller change retries and timeouts. Envoy ignores
them on a request from outside (not an internal address: HTTP header sanitizing); the
gateway removes them first anyway, so no address configuration can make them count."""


class CallKind(enum.Enum):
    READ = "read"
    LIST = "list"
    CREATE = "create"
    """A creation with an idempotency key."""
    WRITE = "write"
    """Anything else that changes state: never sent twice."""

    @property
    def safe(self) -> bool:
        return self is not CallKind.WRITE


def kind_of(method: descriptor.MethodDescriptor) -> CallKind:
    if method.name.startswith("Get"):
        return CallKind.READ
    if method.name.startswith("List"):
        return CallKind.LIST
    if IDEMPOTENCY_FIELD in method.input_type.fields_by_name:
        return CallKind.CREATE
    return CallKind.WRITE


@dataclass(frozen=True)
class PublicRouteSettings:
    """Timeouts and retries of the public per-method routes. A try that takes longer
    than its per-try timeout is abandoned and sent to another replica; the route timeout
    (``GatewaySettings.route_timeout_s``) stays the budget of all tries together."""

    read_per_try_timeout_s: float = 1.0
    """Get*: one row by key, milliseconds when healthy."""
    list_per_try_timeout_s: float = 2.0
    """List*: one page of at most 100."""
    create_per_try_timeout_s: float = 2.0
    """A creation with a request id: one insert and its outbox row."""
    write_timeout_s: float = 5.0
    """The route timeout of a call that is never retried once it reached a service."""
    num_retries: int = 2
    host_selection_attempts: int = 3
    """Tries to pick a host not used by an earlier try (previous_hosts)."""

    def per_try_timeout_s(self, kind: CallKind) -> float:
        return {
            CallKind.READ: self.read_per_try_timeout_s,
            CallKind.LIST: self.list_per_try_timeout_s,
            CallKind.CREATE: self.create_per_try_timeout_s,
        }[kind]


@dataclass(frozen=True)
class MethodRoute:
    grpc_path: str
    cluster: str
    kind: CallKind


def unary_methods(api: PublicApi, clusters: dict[str, str]) -> list[MethodRoute]:
    """Every unary method of the services in ``clusters`` (gRPC service -> cluster), in
    the order of the protos. Streams keep routes of their own."""
    routes = []
    for service_name, cluster in clusters.items():
        service = api.pool.FindServiceByName(service_name)
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            routes.append(MethodRoute(f"/{service_name}/{method.name}", cluster, kind_of(method)))
    return routes


def method_routes(
    api: PublicApi,
    clusters: dict[str, str],
    settings: PublicRouteSettings,
    route_timeout_s: float,
    request_timeout_s: float,
) -> list[dict[str, object]]:
    """One Envoy route per unary method: safe ones retried on another replica on reset,
    UNAVAILABLE and per-try timeout, the others only when the request was never sent.
    ``request_timeout_s``: how long a client may take to send its request
    (``max_stream_duration`` counts from the first byte)."""
    routes: list[dict[str, object]] = []
    for method in unary_methods(api, clusters):
        timeout = route_timeout_s if method.kind.safe else settings.write_timeout_s
        retry: dict[str, object] = {
            "retry_on": SAFE_RETRY_ON if method.kind.safe else UNSENT_RETRY_ON,
            "num_retries": settings.num_retries,
        }
        if method.kind.safe:
            retry["per_try_timeout"] = f"{settings.per_try_timeout_s(method.kind)}s"
        retry |= {
            "retry_host_predicate": [PREVIOUS_HOSTS],
            "host_selection_retry_max_attempts": settings.host_selection_attempts,
            "retry_back_off": BACK_OFF,
        }
        routes.append(
            {
                "match": {"path": method.grpc_path},
                "route": {
                    "cluster": method.cluster,
                    "timeout": f"{timeout}s",
                    "max_stream_duration": {
                        "max_stream_duration": f"{request_timeout_s + timeout}s",
                        "grpc_timeout_header_max": f"{timeout}s",
                    },
                    "retry_policy": retry,
                },
            }
        )
    return routes
