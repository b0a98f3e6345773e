"""A minimal OTLP/gRPC trace receiver: what the services export with ``PT_TRACING=otlp``.

Tests start one to see the spans of a booking; ``ptctl bench --tracing`` starts one so
that the spans go somewhere while tracing costs are measured. It keeps the spans it
received in memory (up to ``keep``), each with the service that sent it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    span: trace_pb2.Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()

    @property
    def kind(self) -> str:
        return trace_pb2.Span.SpanKind.Name(self.span.kind).removeprefix("SPAN_KIND_")

    def attribute(self, key: str) -> str | None:
        for attribute in self.span.attributes:
            if attribute.key == key:
                return str(getattr(attribute.value, attribute.value.WhichOneof("value")))
        return None

    @property
    def links(self) -> list[tuple[str, str]]:
        """(trace id, span id) of each span this one links to."""
        return [(link.trace_id.hex(), link.span_id.hex()) for link in self.span.links]


@dataclass
class _Received(trace_service_pb2_grpc.TraceServiceServicer):
    keep: int
    spans: list[ReceivedSpan] = field(default_factory=list)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = _service_name(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    self.count += len(scope_spans.spans)
                    room = self.keep - len(self.spans)
                    self.spans += [ReceivedSpan(service, s) for s in scope_spans.spans[:room]]
        return trace_service_pb2.ExportTraceServiceResponse()


def _service_name(attributes: object) -> str:
    for attribute in attributes:  # type: ignore[attr-defined]
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""


class OtlpSink:
    """An OTLP/gRPC receiver on ``127.0.0.1:port`` (0: a free one); a context manager."""

    def __init__(self, port: int = 0, keep: int = 100_000) -> None:
        self._received = _Received(keep)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self._received, self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpSink:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def count(self) -> int:
        """Spans received, kept or not."""
        with self._received.lock:
            return self._received.count

    def spans(self) -> list[ReceivedSpan]:
        with self._received.lock:
            return list(self._received.spans)

    def of_trace(self, trace_id: str) -> Iterator[ReceivedSpan]:
        return (span for span in self.spans() if span.trace_id == trace_id)

    def service_env(self, prompt: bool = True) -> dict[str, str]:
        """What a platform's services need to export here; ``prompt``: within 0.2 s of a
        span's end (a test waits for them), not the SDK's 5 s."""
        env = {"PT_TRACING": "otlp", "PT_OTLP_ENDPOINT": self.endpoint}
        if prompt:
            env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
        return env
