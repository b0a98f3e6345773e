"""Envelopes from the stream become the events the views fold in."""

from __future__ import annotations

import pytest

from ptkit.events import decode_event
from ptplatform.events.v1 import events_pb2
from status_svc.application.policies import POLICIES
from status_svc.domain.events import ObservedEvent
from tests.status.flows import CLASS_START, OrderFlow, envelope_of

KINDS = {kind.__name__: kind for kind in POLICIES}


def decode(envelope: events_pb2.EventEnvelope) -> ObservedEvent:
    """As status_svc's consumer decodes it: into the class its policy table names."""
    return decode_event(envelope, KINDS[envelope.event_type])


def test_every_event_of_a_flow_survives_the_wire() -> None:
    flow = OrderFlow().held().order_cancelled().assignment_cancelled("t-kim")
    flow.schedule_cancelled("t-kim").cancellation_refused()
    assert [decode(envelope_of(event)) for event in flow.events] == flow.events


def test_the_views_follow_every_event_the_other_contexts_publish() -> None:
    flow = OrderFlow().held().order_cancelled().assignment_cancelled("t-kim")
    flow.schedule_cancelled("t-kim").cancellation_refused()
    assert {type(event) for event in flow.events} == set(POLICIES)


def test_times_come_back_as_utc_datetimes() -> None:
    flow = OrderFlow().placed().assigned("t-kim").schedule_confirmed("t-kim")
    confirmed = decode(envelope_of(flow.events[-1]))
    assert confirmed.start_time == CLASS_START  # type: ignore[attr-defined]
    assert confirmed.occurred_at == flow.events[-1].occurred_at


def test_a_missing_time_is_none() -> None:
    envelope = envelope_of(
        OrderFlow().placed().assigned("t-kim").schedule_confirmed("t-kim").events[-1]
    )
    envelope.schedule_confirmed.ClearField("start_time")
    envelope.ClearField("occurred_at")
    confirmed = decode(envelope)
    assert confirmed.start_time is None  # type: ignore[attr-defined]
    assert confirmed.occurred_at is None


def test_a_payload_that_contradicts_its_type_is_refused() -> None:
    envelope = envelope_of(OrderFlow().placed().events[0])
    envelope.event_type = "OrderCancelled"
    with pytest.raises(ValueError, match="has no payload"):
        decode(envelope)
