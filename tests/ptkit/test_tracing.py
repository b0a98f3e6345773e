"""ptkit.tracing and ptkit.correlation without a platform: the booking's trace, the
parentage of producer and consumer spans, what a log line carries, and that tracing off
loads nothing of the SDK."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ptkit import correlation
from ptkit.config import ConfigError, Env
from ptkit.correlation import Correlation, trace_id_of
from ptkit.events import correlation_of
from ptkit.logs import JsonFormatter
from ptkit.runtime import TracingSettings, tracing_settings
from ptkit.tracing import Tracing, booking_ids
from ptplatform.events.v1 import events_pb2


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(spans: InMemorySpanExporter) -> Tracing:
    return Tracing("order_svc", TracingSettings(exporter="console"), exporter=spans)


def finished(tracing: Tracing, spans: InMemorySpanExporter) -> dict[str, trace.Span]:
    tracing.provider.force_flush()
    return {span.name: span for span in spans.get_finished_spans()}


def envelope(event_type: str, order_id: str) -> events_pb2.EventEnvelope:
    return events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()), event_type=event_type, order_id=order_id
    )


def test_a_bookings_trace_id_is_its_order_id_and_a_typo_has_none() -> None:
    order_id = str(uuid.uuid4())
    trace_id, root = booking_ids(order_id) or (0, 0)
    assert format(trace_id, "032x") == order_id.replace("-", "")
    assert root and booking_ids(order_id) == (trace_id, root)
    assert booking_ids("not-an-order") is None


def test_placing_opens_the_booking_and_its_consumers_are_children_of_the_producer(
    tracing: Tracing, spans: InMemorySpanExporter
) -> None:
    order_id = str(uuid.uuid4())
    placed = envelope("OrderPlaced", order_id)
    with tracing.tracer.start_as_current_span("PlaceOrder call") as call:
        tracing.recorded(placed, "pt.order.OrderPlaced")
    with tracing.consuming(placed, "manager_svc"):
        pass
    found = finished(tracing, spans)
    root, producer = found["booking"], found["publish OrderPlaced"]
    consumer = found["process OrderPlaced"]
    assert format(root.context.trace_id, "032x") == order_id.replace("-", "")
    assert root.parent is None
    assert [link.context.span_id for link in root.links] == [call.get_span_context().span_id]
    assert producer.parent.span_id == root.context.span_id
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.kind is trace.SpanKind.CONSUMER and producer.kind is trace.SpanKind.PRODUCER
    assert trace_id_of(placed.traceparent) == order_id.replace("-", "")


def test_a_later_step_joins_the_booking_and_links_to_its_own_call(
    tracing: Tracing, spans: InMemorySpanExporter
) -> None:
    order_id = str(uuid.uuid4())
    confirmed = envelope("ScheduleConfirmed", order_id)
    with tracing.tracer.start_as_current_span("ConfirmSchedule call") as call:
        with tracing.step("ConfirmSchedule", order_id):
            tracing.recorded(confirmed, "pt.trainer.ScheduleConfirmed")
    found = finished(tracing, spans)
    step, producer = found["ConfirmSchedule"], found["publish ScheduleConfirmed"]
    assert step.context.trace_id == uuid.UUID(order_id).int
    assert step.context.trace_id != call.get_span_context().trace_id
    assert [link.context.span_id for link in step.links] == [call.get_span_context().span_id]
    assert step.parent.span_id == (booking_ids(order_id) or (0, 0))[1], "under the root"
    assert producer.parent.span_id == step.context.span_id


def test_a_sample_ratio_above_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="PT_TRACING_SAMPLE_RATIO"):
        tracing_settings(Env({"PT_TRACING": "otlp", "PT_TRACING_SAMPLE_RATIO": "2"}))
    assert tracing_settings(Env({})).exporter == "off"


@pytest.mark.parametrize("service", ["order_svc", "manager_svc", "trainer_svc", "status_svc"])
def test_with_tracing_off_a_service_loads_nothing_of_the_sdk(service: str) -> None:
    """Off is nil: no SDK, no instrumentation, no exporter in the process."""
    script = (
        "import sys, importlib;"
        f"importlib.import_module('{service}.main');"
        "from ptkit.runtime import ServiceRuntime;"
        "print([m for m in sys.modules if m.startswith(('opentelemetry.sdk',"
        " 'opentelemetry.instrumentation', 'opentelemetry.exporter'))])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"


def record(message: str, **extra: object) -> dict[str, object]:
    entry = logging.LogRecord("svc", logging.INFO, __file__, 1, message, (), None)
    entry.__dict__.update(extra)
    return json.loads(JsonFormatter().format(entry))


def test_a_line_carries_the_correlation_it_was_logged_in_and_its_own_fields_win() -> None:
    assert "request_id" not in record("outside")
    bound = Correlation(request_id="gw-1", client_request_id="mine", method="/a.B/C", order_id="o1")
    with correlation.bound(bound):
        line = record("call handled", order_id="o2")
    assert (line["request_id"], line["client_request_id"], line["method"]) == (
        "gw-1",
        "mine",
        "/a.B/C",
    )
    assert line["order_id"] == "o2"
    assert "trace_id" not in line, "no span, no trace id"


def test_an_events_lines_carry_its_cause_and_its_trace_from_the_envelope() -> None:
    order_id = str(uuid.uuid4())
    caused = envelope("OrderPlaced", order_id)
    caused.request_id = "gw-7" + "x" * 500
    caused.traceparent = f"00-{order_id.replace('-', '')}-00f067aa0ba902b7-01"
    with correlation.bound(correlation_of(caused)):
        line = record("event handled")
    assert line["request_id"] == ("gw-7" + "x" * 500)[: correlation.MAX_ID_LENGTH]
    assert line["trace_id"] == order_id.replace("-", "")
    assert (line["event_type"], line["order_id"]) == ("OrderPlaced", order_id)


def test_a_statement_that_no_call_or_event_made_starts_no_trace(
    tracing: Tracing, spans: InMemorySpanExporter
) -> None:
    with tracing.tracer.start_as_current_span("SELECT outbox", kind=trace.SpanKind.CLIENT):
        pass
    with tracing.tracer.start_as_current_span("PlaceOrder call", kind=trace.SpanKind.SERVER):
        with tracing.tracer.start_as_current_span("INSERT orders", kind=trace.SpanKind.CLIENT):
            pass
    assert set(finished(tracing, spans)) == {"PlaceOrder call", "INSERT orders"}
