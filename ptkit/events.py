"""The wire form of domain events: ``ptplatform.events.v1.EventEnvelope``.

A domain event dataclass maps to the envelope's payload field of the same name in
snake_case (``OrderPlaced`` -> ``order_placed``), field by field; datetimes become
Timestamps. One codec serves every service, so no service writes this mapping twice.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ptkit import correlation
from ptkit.correlation import MAX_ID_LENGTH, Correlation, trace_id_of
from ptkit.domain import DomainEvent
from ptkit.sql import OutboxMessage
from ptplatform.events.v1 import events_pb2

if TYPE_CHECKING:
    from ptkit.tracing import Tracing

STREAM_SUBJECTS = "pt.>"

PUBLISHERS: Mapping[str, str] = {
    "OrderPlaced": "order",
    "OrderCancelled": "order",
    "OrderConfirmed": "order",
    "OrderCompleted": "order",
    "TrainerAssigned": "manager",
    "AssignmentCancelled": "manager",
    "CancellationRefused": "manager",
    "ScheduleConfirmed": "trainer",
    "ScheduleCancelled": "trainer",
    "ClassResultRegistered": "trainer",
}
"""The context that publishes each event type of ``events.proto``: a consumer's
subjects are derived from it."""

BOOKING_OPENED_BY = "OrderPlaced"
"""The event that opens a booking, and so its trace (ptkit.tracing)."""

ENVELOPE_FIELDS = frozenset({"event_id", "order_id", "aggregate_version", "occurred_at"})
"""What an inbound event dataclass may take from the envelope rather than the payload."""

E = TypeVar("E")


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def subject_for(source: str, event_type: str) -> str:
    """JetStream subject of an event: ``pt.<context>.<EventType>``."""
    return f"pt.{source}.{event_type}"


def to_timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def from_timestamp(stamp: Timestamp, present: bool = True) -> datetime | None:
    """A proto Timestamp as an aware UTC datetime; None when the field was not set."""
    if not present:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _fill(message: Message, event: DomainEvent) -> None:
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if value is None:
            continue
        if isinstance(value, datetime):
            getattr(message, field.name).CopyFrom(to_timestamp(value))
        else:
            setattr(message, field.name, value)


class EnvelopeSerializer:
    """Serializes the domain events of one context (``source``) into envelopes, with the
    request id of the call or event being handled and, when tracing, the trace context
    of the event's producer span."""

    def __init__(self, source: str, tracing: Tracing | None = None) -> None:
        self.source = source
        self.tracing = tracing

    def envelope(
        self, event: DomainEvent, aggregate_version: int, causation_id: str
    ) -> events_pb2.EventEnvelope:
        envelope = events_pb2.EventEnvelope(
            event_id=str(uuid.uuid4()),
            event_type=event.event_type,
            order_id=event.order_id,
            causation_id=causation_id,
            aggregate_version=aggregate_version,
            occurred_at=to_timestamp(datetime.now(UTC)),
            source=self.source,
        )
        cause = correlation.current()
        if cause is not None:
            envelope.request_id = cause.request_id
            envelope.client_request_id = cause.client_request_id
        _fill(getattr(envelope, snake_case(event.event_type)), event)
        if self.tracing is not None:
            self.tracing.recorded(envelope, subject_for(self.source, envelope.event_type))
        return envelope

    def __call__(
        self, event: DomainEvent, aggregate_version: int, causation_id: str
    ) -> OutboxMessage:
        envelope = self.envelope(event, aggregate_version, causation_id)
        return OutboxMessage(
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            subject=subject_for(self.source, envelope.event_type),
            payload=envelope.SerializeToString(),
        )


def correlation_of(envelope: events_pb2.EventEnvelope) -> Correlation:
    """What ties the log lines of an event's handling to it and to the call it came from."""
    cut = MAX_ID_LENGTH
    return Correlation(
        request_id=envelope.request_id[:cut],
        client_request_id=envelope.client_request_id[:cut],
        trace_id=trace_id_of(envelope.traceparent),
        event_type=envelope.event_type[:cut],
        event_id=envelope.event_id[:cut],
        order_id=envelope.order_id[:cut],
    )


def payload_of(envelope: events_pb2.EventEnvelope) -> Message:
    """The event inside an envelope; raises ValueError when the envelope carries none."""
    kind = envelope.WhichOneof("payload")
    if kind is None or snake_case(envelope.event_type) != kind:
        raise ValueError(
            f"envelope {envelope.event_id!r}: type {envelope.event_type!r} has no payload"
        )
    return getattr(envelope, kind)


def subject_of(kind: type) -> str:
    """The subject an inbound event class is published on (``pt.<source>.<EventType>``)."""
    if kind.__name__ not in PUBLISHERS:
        raise ValueError(f"{kind.__name__} is not an event of events.proto")
    return subject_for(PUBLISHERS[kind.__name__], kind.__name__)


def check_decodable(kind: type) -> None:
    """Raise TypeError unless every field of the dataclass ``kind`` comes from the envelope
    or from its payload: a misspelt field fails at start-up, not on the first event."""
    subject_of(kind)
    payload = events_pb2.EventEnvelope.DESCRIPTOR.fields_by_name[snake_case(kind.__name__)]
    known = ENVELOPE_FIELDS | set(payload.message_type.fields_by_name)
    unknown = [f.name for f in dataclasses.fields(kind) if f.name not in known]
    if unknown:
        raise TypeError(f"{kind.__name__} has fields the envelope does not carry: {unknown}")


def decode_event(envelope: events_pb2.EventEnvelope, kind: type[E]) -> E:
    """The event in an envelope as the consuming context declares it: a dataclass whose
    fields are taken by name from the payload, or from the envelope for event_id,
    order_id, aggregate_version and occurred_at; Timestamps become aware datetimes (None
    when unset). Raises ValueError for an envelope whose payload does not match its type."""
    if envelope.event_type != kind.__name__:
        raise ValueError(f"envelope {envelope.event_id!r} holds a {envelope.event_type!r}")
    payload = payload_of(envelope)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        source: Message = envelope if field.name in ENVELOPE_FIELDS else payload
        value = getattr(source, field.name)
        if isinstance(value, Timestamp):
            value = from_timestamp(value, source.HasField(field.name))
        values[field.name] = value
    return kind(**values)
