"""The wire form of domain events: ``ptplatform.events.v1.EventEnvelope``.

A domain event dataclass maps to the envelope's payload field of the same name in
snake_case (``OrderPlaced`` -> ``order_placed``), field by field; datetimes become
Timestamps. One codec serves every service, so no service writes this mapping twice.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ptkit.domain import DomainEvent
from ptkit.sql import OutboxMessage
from ptplatform.events.v1 import events_pb2

STREAM_SUBJECTS = "pt.>"


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
    """Serializes the domain events of one context (``source``) into envelopes."""

    def __init__(self, source: str) -> None:
        self.source = source

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
        _fill(getattr(envelope, snake_case(event.event_type)), event)
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


def payload_of(envelope: events_pb2.EventEnvelope) -> Message:
    """The event inside an envelope; raises ValueError when the envelope carries none."""
    kind = envelope.WhichOneof("payload")
    if kind is None or snake_case(envelope.event_type) != kind:
        raise ValueError(
            f"envelope {envelope.event_id!r}: type {envelope.event_type!r} has no payload"
        )
    return getattr(envelope, kind)
