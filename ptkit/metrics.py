"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPCS = Counter("pt_grpc_requests_total", "gRPC calls handled", ["method", "code"])
RPC_LATENCY = Histogram(
    "pt_grpc_request_seconds",
    "gRPC call latency",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
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


def serve_metrics(host: str, port: int) -> None:
    """Expose /metrics over HTTP; port 0 disables it."""
    if port:
        start_http_server(port, addr=host)
