"""The events of an order's life, as order_svc, manager_svc and trainer_svc publish them
(each aggregate's version counted the way those services count it), for status_svc's
tests; :func:`envelope_of` gives the wire form."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from ptkit.events import snake_case, subject_for, to_timestamp
from ptkit.messaging import bind
from ptkit.ports import UnitOfWork
from ptplatform.events.v1 import events_pb2
from status_svc.application.bell import NotificationBell
from status_svc.application.policies import POLICIES
from status_svc.domain.events import (
    AssignmentCancelled,
    CancellationRefused,
    ClassResultRegistered,
    ObservedEvent,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    Origin,
    ScheduleCancelled,
    ScheduleConfirmed,
    TrainerAssigned,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
CLASS_START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TRAINER_NAMES = {"t-kim": "Kim", "t-lee": "Lee"}
PUBLISHER = {Origin.ORDER: "order", Origin.ASSIGNMENT: "manager", Origin.SCHEDULE: "trainer"}
_ENVELOPE_FIELDS = {"event_id", "order_id", "aggregate_version", "occurred_at"}


def envelope_of(event: ObservedEvent) -> events_pb2.EventEnvelope:
    """The envelope the publishing service would have put on the stream."""
    envelope = events_pb2.EventEnvelope(
        event_id=event.event_id,
        event_type=event.event_type,
        order_id=event.order_id,
        aggregate_version=event.aggregate_version,
        occurred_at=to_timestamp(event.occurred_at),
        source=PUBLISHER[event.origin],
    )
    payload = getattr(envelope, snake_case(event.event_type))
    payload.order_id = event.order_id
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if field.name in _ENVELOPE_FIELDS or value is None:
            continue
        if isinstance(value, datetime):
            getattr(payload, field.name).CopyFrom(to_timestamp(value))
        else:
            setattr(payload, field.name, value)
    return envelope


async def project(
    event: ObservedEvent, uow: UnitOfWork, bell: NotificationBell | None = None
) -> None:
    """Hand the event to status_svc's policy for it, as its consumer would."""
    policies = bind(POLICIES, bell=bell or NotificationBell())
    await policies[type(event)](event, uow)


def subject_of(event: ObservedEvent) -> str:
    return subject_for(PUBLISHER[event.origin], event.event_type)


class OrderFlow:
    """Builds one order's events step by step: ``OrderFlow(...).placed().assigned("t-kim")``."""

    def __init__(
        self,
        order_id: str | None = None,
        customer_id: str = "alice",
        class_name: str = "Pilates 1:1",
        clock: Iterator[int] | None = None,
    ) -> None:
        self.order_id = order_id or str(uuid.uuid4())
        self.customer_id = customer_id
        self.class_name = class_name
        self.clock = clock or count()
        self.versions = {origin: 0 for origin in Origin}
        self.events: list[ObservedEvent] = []

    def touch(self, origin: Origin) -> OrderFlow:
        """A change of the aggregate that publishes no event (it still moves the version)."""
        self.versions[origin] += 1
        return self

    def _emit(self, kind: type[ObservedEvent], **fields: Any) -> OrderFlow:
        self.versions[kind.origin] += 1
        self.events.append(
            kind(
                event_id=str(uuid.uuid4()),
                order_id=self.order_id,
                aggregate_version=self.versions[kind.origin],
                occurred_at=T0 + timedelta(seconds=next(self.clock)),
                **fields,
            )
        )
        return self

    def placed(self) -> OrderFlow:
        self._emit(
            OrderPlaced,
            customer_id=self.customer_id,
            customer_name=self.customer_id.title(),
            class_name=self.class_name,
        )
        return self.touch(Origin.ASSIGNMENT)  # manager_svc opens the assignment

    def assigned(self, trainer_id: str) -> OrderFlow:
        return self._emit(
            TrainerAssigned,
            trainer_id=trainer_id,
            trainer_name=TRAINER_NAMES.get(trainer_id, trainer_id.title()),
            customer_id=self.customer_id,
            class_name=self.class_name,
        )

    def schedule_requested(self) -> OrderFlow:
        return self.touch(Origin.SCHEDULE)

    def schedule_confirmed(self, trainer_id: str, start: datetime = CLASS_START) -> OrderFlow:
        return self._emit(
            ScheduleConfirmed, trainer_id=trainer_id, start_time=start, duration_minutes=60
        )

    def order_confirmed(self) -> OrderFlow:
        self.touch(Origin.ASSIGNMENT)  # manager_svc marks the assignment ORDER_CONFIRMED
        return self._emit(OrderConfirmed, customer_id=self.customer_id)

    def result(self, trainer_id: str, text: str = "Great form") -> OrderFlow:
        return self._emit(
            ClassResultRegistered, trainer_id=trainer_id, customer_id=self.customer_id, result=text
        )

    def order_completed(self) -> OrderFlow:
        return self._emit(OrderCompleted, customer_id=self.customer_id)

    def order_cancelled(self) -> OrderFlow:
        return self._emit(OrderCancelled, customer_id=self.customer_id, reason="ill")

    def assignment_cancelled(self, trainer_id: str = "") -> OrderFlow:
        return self._emit(AssignmentCancelled, trainer_id=trainer_id, reason="ill")

    def schedule_cancelled(self, trainer_id: str = "") -> OrderFlow:
        return self._emit(ScheduleCancelled, trainer_id=trainer_id, reason="ill")

    def cancellation_refused(self, reason: str = "class already held") -> OrderFlow:
        """manager_svc: trainer_svc refused to cancel the schedule (ADR 0007)."""
        return self._emit(CancellationRefused, customer_id=self.customer_id, reason=reason)

    def held(self, trainer_id: str = "t-kim") -> OrderFlow:
        """The whole happy path: placed, assigned, confirmed, class held."""
        return (
            self.placed()
            .assigned(trainer_id)
            .schedule_requested()
            .schedule_confirmed(trainer_id)
            .order_confirmed()
            .result(trainer_id)
            .order_completed()
        )
