"""Inbound event adapter: every domain event -> the views (and notifications)."""

from __future__ import annotations

import dataclasses

from google.protobuf.timestamp_pb2 import Timestamp

from ptkit.events import from_timestamp, payload_of, snake_case
from ptkit.sql import Causation
from ptplatform.events.v1 import events_pb2
from status_svc.adapters.sql import SqlStatusUnitOfWork
from status_svc.application import handlers
from status_svc.application.bell import NotificationBell
from status_svc.domain.events import OBSERVED_EVENTS, ObservedEvent

DURABLE = "status_svc"
SUBJECTS = ("pt.order.>", "pt.manager.>", "pt.trainer.>")

_EVENT_CLASSES = {snake_case(kind.__name__): kind for kind in OBSERVED_EVENTS}
_FROM_ENVELOPE = {"event_id", "order_id", "aggregate_version", "occurred_at"}


def decode(envelope: events_pb2.EventEnvelope) -> ObservedEvent | None:
    """The event in an envelope, field by field by name; None for a kind the views do
    not follow. Raises ValueError for an envelope whose payload does not match its type."""
    kind = _EVENT_CLASSES.get(envelope.WhichOneof("payload") or "")
    if kind is None:
        return None
    payload = payload_of(envelope)
    values: dict[str, object] = {
        "event_id": envelope.event_id,
        "order_id": envelope.order_id,
        "aggregate_version": envelope.aggregate_version,
        "occurred_at": from_timestamp(envelope.occurred_at, envelope.HasField("occurred_at")),
    }
    for field in dataclasses.fields(kind):
        if field.name in _FROM_ENVELOPE:
            continue
        value = getattr(payload, field.name)
        if isinstance(value, Timestamp):
            value = from_timestamp(value, payload.HasField(field.name))
        values[field.name] = value
    return kind(**values)


class StatusEventHandler:
    def __init__(self, uow: SqlStatusUnitOfWork, bell: NotificationBell) -> None:
        self.uow = uow
        self.bell = bell

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        event = decode(envelope)
        if event is None:
            return
        uow = self.uow.handling(Causation(DURABLE, envelope.event_id))
        await handlers.project_event(event, uow, self.bell)
