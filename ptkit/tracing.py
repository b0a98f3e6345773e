"""OpenTelemetry tracing, off unless ``PT_TRACING`` says ``otlp`` or ``console``.

Off, nothing of it runs: no interceptor, no span, no SQL hook (the services do not even
import the SDK). On:

- gRPC server and client spans come from opentelemetry-instrumentation-grpc, SQL spans
  from opentelemetry-instrumentation-sqlalchemy;
- an event recorded in the outbox gets a producer span, and its W3C ``traceparent``
  travels in the envelope (through the outbox row and NATS); the consumer's span is a
  child of it.

**One trace per booking.** A booking spans calls of different people over days (a
customer places, a manager assigns, a trainer confirms and records the result), so no
call's trace can hold it. Its trace id is its ``order_id`` (a UUID is 128 random bits,
as a W3C trace id): the order's placement records a ``booking`` root span with that
trace id, and a span for an order outside its booking's trace (a manager's
AssignTrainer, a trainer's ConfirmSchedule) starts a child of that root instead, with a
link to the call's own span. An operator finds a booking's trace by its order id.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, health_check, negate, service_prefix
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.events import BOOKING_OPENED_BY
from ptplatform.events.v1 import events_pb2

if TYPE_CHECKING:
    from ptkit.runtime import TracingSettings

log = logging.getLogger(__name__)

_LOW_64 = (1 << 64) - 1
_propagator = TraceContextTextMapPropagator()


def booking_ids(order_id: str) -> tuple[int, int] | None:
    """The trace id and root span id of an order's booking; None for an id that is no
    UUID (a caller's typo), which gets no booking."""
    try:
        trace_id = uuid.UUID(order_id).int
    except ValueError:
        return None
    if not trace_id:
        return None
    return trace_id, ((trace_id >> 64) ^ (trace_id & _LOW_64)) or 1


class _BookingIds(RandomIdGenerator):
    """Random ids, but the ids a ``booking`` root span must have while they are forced."""

    def __init__(self) -> None:
        self._forced: ContextVar[tuple[int, int] | None] = ContextVar("forced", default=None)

    @contextmanager
    def forced(self, ids: tuple[int, int]) -> Iterator[None]:
        token = self._forced.set(ids)
        try:
            yield
        finally:
            self._forced.reset(token)

    def generate_trace_id(self) -> int:
        forced = self._forced.get()
        return forced[0] if forced else super().generate_trace_id()

    def generate_span_id(self) -> int:
        forced = self._forced.get()
        return forced[1] if forced else super().generate_span_id()


class _RootSampler(Sampler):
    """Decides for spans that start a trace: a client span without a parent (a database
    statement that no call or event made: the outbox relay's polling, retention) is
    dropped, so traces hold work, not background noise; any other root is kept by the
    trace id's ratio."""

    def __init__(self, ratio: TraceIdRatioBased) -> None:
        self.ratio = ratio

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self.ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"PtRoot{{{self.ratio.get_description()}}}"


class Tracing:
    """One service's tracer provider and the spans the kit makes with it."""

    def __init__(
        self, service: str, settings: TracingSettings, exporter: SpanExporter | None = None
    ) -> None:
        self._ids = _BookingIds()
        self._sampler = TraceIdRatioBased(settings.sample_ratio)
        self.provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: service}),
            sampler=ParentBased(_RootSampler(self._sampler)),
            id_generator=self._ids,
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(settings)))
        self.tracer = self.provider.get_tracer("ptkit")

    def server_interceptors(self) -> list[Any]:
        """The instrumentation's server spans, for every call but health and reflection."""
        calls = negate(any_of(health_check(), service_prefix("grpc.reflection")))
        return [aio_server_interceptor(self.provider, filter_=calls)]

    def client_interceptors(self) -> Sequence[Any]:
        return aio_client_interceptors(self.provider)

    def instrument(self, engine: AsyncEngine) -> None:
        """SQL spans of ``engine``. The instrumentation declares SQLAlchemy below 2.1 and
        would refuse 2.1 (whose engine events it hooks are unchanged): its check is
        skipped, and tests/e2e/test_tracing.py shows the spans."""
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine,
            tracer_provider=self.provider,
            enable_commenter=False,
            skip_dep_check=True,
        )

    async def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.provider.shutdown()

    @contextmanager
    def step(self, name: str, order_id: str) -> Iterator[None]:
        """A span for work on an order (a call naming it), in its booking's trace."""
        context, links = self._in_booking(order_id)
        with self.tracer.start_as_current_span(
            name, context=context, links=links, attributes={"pt.order_id": order_id}
        ):
            yield

    def recorded(self, envelope: events_pb2.EventEnvelope, subject: str) -> None:
        """The producer span of an event just recorded in the outbox; its context goes in
        the envelope. The order's first event (OrderPlaced) opens the booking's trace."""
        order_id = envelope.order_id
        context, links = self._in_booking(order_id)
        ids = booking_ids(order_id)
        if envelope.event_type == BOOKING_OPENED_BY and ids is not None:
            with self._ids.forced(ids):
                root = self.tracer.start_span(
                    "booking", context=Context(), links=links, attributes={"pt.order_id": order_id}
                )
            root.end()
            context, links = trace.set_span_in_context(root), []
        span = self.tracer.start_span(
            f"publish {envelope.event_type}",
            context=context,
            kind=SpanKind.PRODUCER,
            links=links,
            attributes=_messaging(envelope, {"messaging.destination.name": subject}),
        )
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        envelope.traceparent = carrier.get("traceparent", "")
        envelope.tracestate = carrier.get("tracestate", "")

    @contextmanager
    def consuming(self, envelope: events_pb2.EventEnvelope, consumer: str) -> Iterator[None]:
        """The consumer span of one event: a child of the span that recorded it."""
        if envelope.traceparent:
            carrier = {"traceparent": envelope.traceparent, "tracestate": envelope.tracestate}
            context, links = _propagator.extract(carrier, context=Context()), []
        else:  # recorded with tracing off
            context, links = self._in_booking(envelope.order_id, Context())
        with self.tracer.start_as_current_span(
            f"process {envelope.event_type}",
            context=context,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=_messaging(envelope, {"messaging.consumer.group.name": consumer}),
        ):
            yield

    def _in_booking(
        self, order_id: str, context: Context | None = None
    ) -> tuple[Context | None, list[Link]]:
        """Where a span for ``order_id`` starts: under the current span when that is in
        the booking's trace already, else under the booking's root, linked to the
        current span. An id that is no UUID: under the current span."""
        current = trace.get_current_span(context).get_span_context()
        ids = booking_ids(order_id)
        if ids is None or (current.is_valid and current.trace_id == ids[0]):
            return context, []
        trace_id, root_id = ids
        kept = self._sampler.should_sample(None, trace_id, "booking").decision.is_sampled()
        root = SpanContext(
            trace_id,
            root_id,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if kept else TraceFlags.DEFAULT),
        )
        links = [Link(current)] if current.is_valid else []
        return trace.set_span_in_context(NonRecordingSpan(root)), links


def _messaging(envelope: events_pb2.EventEnvelope, more: dict[str, str]) -> dict[str, str]:
    """The OpenTelemetry messaging attributes of an event's span, and its order."""
    return {
        "messaging.system": "nats",
        "messaging.message.id": envelope.event_id,
        "pt.order_id": envelope.order_id,
        **more,
    }


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    endpoint = settings.otlp_endpoint
    return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
