"""Envelopes from the stream become the events the views fold in."""

from __future__ import annotations

import pytest

from ptplatform.events.v1 import events_pb2
from status_svc.adapters.event_consumer import decode
from tests.status_flows import CLASS_START, OrderFlow, envelope_of


def test_every_event_of_a_flow_survives_the_wire() -> None:
    flow = OrderFlow().held().order_cancelled().assignment_cancelled("t-kim")
    flow.schedule_cancelled("t-kim")
    assert [decode(envelope_of(event)) for event in flow.events] == flow.events


def test_times_come_back_as_utc_datetimes() -> None:
    flow = OrderFlow().placed().assigned("t-kim").schedule_confirmed("t-kim")
    confirmed = decode(envelope_of(flow.events[-1]))
    assert confirmed.start_time == CLASS_START  # type: ignore[union-attr]
    assert confirmed.occurred_at == flow.events[-1].occurred_at  # type: ignore[union-attr]


def test_a_missing_time_is_none() -> None:
    envelope = envelope_of(
        OrderFlow().placed().assigned("t-kim").schedule_confirmed("t-kim").events[-1]
    )
    envelope.schedule_confirmed.ClearField("start_time")
    envelope.ClearField("occurred_at")
    confirmed = decode(envelope)
    assert confirmed.start_time is None  # type: ignore[union-attr]
    assert confirmed.occurred_at is None  # type: ignore[union-attr]


def test_an_envelope_without_a_payload_is_ignored() -> None:
    assert decode(events_pb2.EventEnvelope(event_id="e-1", event_type="SomethingNew")) is None


def test_a_payload_that_contradicts_its_type_is_refused() -> None:
    envelope = envelope_of(OrderFlow().placed().events[0])
    envelope.event_type = "OrderCancelled"
    with pytest.raises(ValueError, match="has no payload"):
        decode(envelope)
