"""Prometheus metrics shared by every service (one registry per process).

The gRPC series carry the names and labels of go-grpc-prometheus (``grpc_server_*``,
``grpc_type``, ``grpc_service``, ``grpc_method``, ``grpc_code``), which stock dashboards
expect. docs/operations.md lists every series, and deploy/observability/ uses them.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

_GRPC_LABELS = ["grpc_type", "grpc_service", "grpc_method"]
RPCS_STARTED = Counter("grpc_server_started_total", "gRPC calls started", _GRPC_LABELS)
RPCS = Counter(
    "grpc_server_handled_total", "gRPC calls completed, by status", [*_GRPC_LABELS, "grpc_code"]
)
RPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "gRPC call duration until the server answered (a stream: until it ended)",
    _GRPC_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
)
STREAM_MESSAGES_SENT = Counter(
    "grpc_server_msg_sent_total", "Messages a server stream sent", _GRPC_LABELS
)


@cache
def grpc_code(code: grpc.StatusCode) -> str:
    """The ``grpc_code`` label of a status, spelt as Go's ``codes.Code`` (and so
    go-grpc-prometheus and stock dashboards) spell it: ``OK``, ``DeadlineExceeded``,
    ``Canceled``."""
    if code is grpc.StatusCode.OK:
        return "OK"
    if code is grpc.StatusCode.CANCELLED:
        return "Canceled"
    return "".join(part.capitalize() for part in code.name.split("_"))


BUILD_INFO = Gauge("pt_build_info", "The service and its version; always 1", ["service", "version"])
NATS_CONNECTED = Gauge("pt_nats_connected", "1 while the process is connected to NATS")
CONSUMER_PENDING = Gauge(
    "pt_consumer_pending_messages",
    "Messages of the stream the durable has not delivered yet (JetStream num_pending)",
    ["consumer", "stream"],
)
CONSUMER_ACK_PENDING = Gauge(
    "pt_consumer_ack_pending_messages",
    "Messages delivered to the durable and not acknowledged yet (num_ack_pending)",
    ["consumer", "stream"],
)
CONSUMER_REDELIVERED = Gauge(
    "pt_consumer_redelivered_messages",
    "Messages delivered to the durable more than once and not acknowledged yet",
    ["consumer", "stream"],
)
DEAD_LETTERS = Gauge(
    "pt_dead_letters",
    "Dead letters of the durable stored in PT_DEAD_LETTERS (not yet redriven or deleted)",
    ["consumer"],
)
EVENTS_HANDLED = Counter(
    "pt_events_handled_total", "Events whose effect was committed", ["consumer", "event_type"]
)
EVENTS_DUPLICATE = Counter(
    "pt_events_duplicate_total",
    "Redelivered events that changed nothing",
    ["consumer", "event_type"],
)
EVENTS_REDELIVERED = Counter(
    "pt_events_redelivered_total", "Events nak'ed for a later retry", ["consumer", "event_type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "pt_events_dead_lettered_total",
    "Events a consumer gave up on, stored in PT_DEAD_LETTERS",
    ["consumer", "event_type"],
)
EVENTS_REJECTED = Counter(
    "pt_events_rejected_total",
    "Events refused for their provenance (ptkit.provenance) and terminated",
    ["consumer", "reason"],
)
CONSUMER_BATCH_SIZE = Histogram(
    "pt_consumer_batch_events",
    "Events a consumer applied in one transaction",
    ["consumer"],
    buckets=(2, 4, 8, 16, 32, 64, 128),
)
CONSUMER_BATCH_FALLBACKS = Counter(
    "pt_consumer_batch_fallbacks_total",
    "Batches whose transaction failed and whose events were handled one at a time",
    ["consumer"],
)
OUTBOX_PUBLISHED = Counter("pt_outbox_published_total", "Outbox events published", ["source"])
OUTBOX_BACKLOG = Gauge("pt_outbox_backlog", "Outbox events not yet published", ["source"])
OUTBOX_OLDEST_AGE = Gauge(
    "pt_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event", ["source"]
)


def package_version() -> str:
    try:
        return version("ptplatform")
    except PackageNotFoundError:
        return "unknown"


def serve_metrics(host: str, port: int, service: str) -> None:
    """Expose /metrics over HTTP; port 0 disables it."""
    BUILD_INFO.labels(service, package_version()).set(1)
    if port:
        start_http_server(port, addr=host)
