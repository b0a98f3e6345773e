"""A consumer refuses an envelope whose source, subject and event type disagree
(ptkit.provenance): unit rules, then order_svc's real consumer and policy table on a real
nats-server, where a forged ScheduleConfirmed confirms nothing, is terminated (never
redelivered), logged and counted, and the consumer goes on."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.messaging import JetStream
from ptkit.provenance import SOURCE_MISMATCH, SUBJECT_MISMATCH, rejection
from ptplatform.events.v1 import events_pb2
from tests.helpers import eventually
from tests.ptkit.test_consumer import (
    DURABLE,
    SUBJECT,
    all_acked,
    engine,
    order_confirmed_events,
    order_consumer,
    orders_confirmed,
    place_orders,
    processed_events,
    publisher,
    running,
    schedule_confirmed,
)

__all__ = ["engine", "publisher"]  # fixtures


def envelope(event_type: str, source: str) -> events_pb2.EventEnvelope:
    return events_pb2.EventEnvelope(event_id="e-1", event_type=event_type, source=source)


def rejected(reason: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "pt_events_rejected_total", {"consumer": DURABLE, "reason": reason}
        )
        or 0.0
    )


def test_an_event_from_the_context_that_owns_it_is_taken() -> None:
    event = envelope("ScheduleConfirmed", "trainer")
    assert rejection("pt.trainer.ScheduleConfirmed", event) is None


@pytest.mark.parametrize(
    ("subject", "event_type", "source", "reason"),
    [
        # another context's credentials cannot publish on pt.trainer.*; these are what
        # they (or a bug) could still put on the bus
        ("pt.trainer.ScheduleConfirmed", "ScheduleConfirmed", "order", SOURCE_MISMATCH),
        ("pt.order.ScheduleConfirmed", "ScheduleConfirmed", "order", SOURCE_MISMATCH),
        ("pt.order.OrderPlaced", "ScheduleConfirmed", "trainer", SUBJECT_MISMATCH),
        ("pt.order.OrderPlaced", "ScheduleConfirmed", "order", SUBJECT_MISMATCH),
        ("pt.order.OrderPlaced.extra", "OrderPlaced", "order", SUBJECT_MISMATCH),
        ("pt.order.OrderPlaced", "OrderPlaced", "", SOURCE_MISMATCH),
        ("pt_redrive.order_svc", "ScheduleConfirmed", "manager", SOURCE_MISMATCH),
    ],
)
def test_an_event_whose_source_or_subject_disagrees_is_refused(
    subject: str, event_type: str, source: str, reason: str
) -> None:
    assert rejection(subject, envelope(event_type, source)) == reason


def test_a_redriven_event_from_its_owner_is_taken() -> None:
    assert rejection("pt_redrive.order_svc", envelope("ScheduleConfirmed", "trainer")) is None


async def test_a_forged_event_is_terminated_counted_and_changes_nothing(
    engine: AsyncEngine, publisher: JetStream, caplog: pytest.LogCaptureFixture
) -> None:
    [forged_for, genuine_for] = await place_orders(engine, 2)
    forged = schedule_confirmed(forged_for)
    forged.source = "manager"
    genuine = schedule_confirmed(genuine_for)
    before = rejected(SOURCE_MISMATCH)
    with caplog.at_level(logging.ERROR, logger="ptkit.messaging"):
        async with running(order_consumer(publisher, engine)):
            await publisher.publish(SUBJECT, forged.SerializeToString(), forged.event_id)
            await publisher.publish(SUBJECT, genuine.SerializeToString(), genuine.event_id)
            info = await eventually(lambda: all_acked(publisher, 2), what="both settled")

    assert rejected(SOURCE_MISMATCH) - before == 1
    assert info.num_redelivered == 0  # terminated, not nak'ed
    assert await processed_events(engine) == [genuine.event_id]
    assert await orders_confirmed(engine) == 1
    assert await order_confirmed_events(engine) == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "event rejected"]
    assert logged.__dict__["event_id"] == forged.event_id
    assert logged.__dict__["reason"] == SOURCE_MISMATCH
