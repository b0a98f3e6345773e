"""ptkit's policy tables: what the kit derives from a service's ``{event: policy}``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Self

import pytest

from manager_svc.application.policies import POLICIES as MANAGER_POLICIES
from order_svc.application import handlers as order
from order_svc.application.policies import POLICIES as ORDER_POLICIES
from ptkit.events import decode_event, to_timestamp
from ptkit.messaging import PolicyHandler, bind
from ptkit.sql import Causation
from ptplatform.events.v1 import events_pb2
from status_svc.application.policies import POLICIES as STATUS_POLICIES
from trainer_svc.application.policies import POLICIES as TRAINER_POLICIES

WHEN = datetime(2026, 3, 1, 9, 0).astimezone()


@dataclass(frozen=True)
class ScheduleConfirmed:
    order_id: str
    trainer_id: str
    start_time: datetime | None
    aggregate_version: int
    event_id: str


class RecordingUnitOfWork:
    def __init__(self) -> None:
        self.causation: Causation | None = None

    def handling(self, causation: Causation) -> Self:
        self.causation = causation
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        return None


def schedule_confirmed(event_type: str = "ScheduleConfirmed") -> events_pb2.EventEnvelope:
    envelope = events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()), event_type=event_type, order_id="o-1", aggregate_version=3
    )
    envelope.schedule_confirmed.trainer_id = "t-kim"
    envelope.schedule_confirmed.start_time.CopyFrom(to_timestamp(WHEN))
    return envelope


def test_subjects_and_durable_come_from_the_table_and_the_service_name() -> None:
    table = {
        order.ScheduleConfirmed: order.confirm_order_on_schedule_confirmed,
        order.ClassResultRegistered: order.complete_order_on_class_result_registered,
    }
    handler = PolicyHandler("order_svc", table, RecordingUnitOfWork)
    assert handler.durable == "order_svc"
    assert handler.subjects == (
        "pt.trainer.ScheduleConfirmed",
        "pt.trainer.ClassResultRegistered",
    )


@pytest.mark.parametrize(
    ("service", "policies"),
    [
        ("order_svc", ORDER_POLICIES),
        ("manager_svc", MANAGER_POLICIES),
        ("trainer_svc", TRAINER_POLICIES),
        ("status_svc", STATUS_POLICIES),
    ],
)
def test_every_service_table_decodes_from_the_envelope(
    service: str, policies: dict[type, object]
) -> None:
    """Building the handler checks every event class against the envelope; each table
    entry subscribes to exactly its event's subject."""
    handler = PolicyHandler(service, policies, RecordingUnitOfWork)  # type: ignore[arg-type]
    subscribed = sorted(subject.rsplit(".", 1)[1] for subject in handler.subjects)
    assert subscribed == sorted(event.__name__ for event in policies)
    assert all(subject.startswith("pt.") for subject in handler.subjects)


def test_a_field_the_envelope_does_not_carry_fails_at_start_up() -> None:
    @dataclass(frozen=True)
    class OrderPlaced:
        order_id: str
        customer_phone: str

    async def policy(event: OrderPlaced, uow: RecordingUnitOfWork) -> None: ...

    with pytest.raises(TypeError, match="customer_phone"):
        PolicyHandler("x_svc", {OrderPlaced: policy}, RecordingUnitOfWork)


def test_an_event_is_decoded_into_the_class_the_table_names() -> None:
    envelope = schedule_confirmed()
    event = decode_event(envelope, ScheduleConfirmed)
    assert event == ScheduleConfirmed("o-1", "t-kim", WHEN, 3, envelope.event_id)


async def test_the_policy_gets_the_event_and_a_unit_of_work_bound_to_its_causation() -> None:
    seen: list[tuple[object, Causation | None]] = []

    async def policy(event: ScheduleConfirmed, uow: RecordingUnitOfWork) -> None:
        seen.append((event, uow.causation))

    envelope = schedule_confirmed()
    await PolicyHandler("x_svc", {ScheduleConfirmed: policy}, RecordingUnitOfWork)(envelope)
    [(event, causation)] = seen
    assert isinstance(event, ScheduleConfirmed) and event.trainer_id == "t-kim"
    assert causation == Causation("x_svc", envelope.event_id)


async def test_an_event_type_the_table_does_not_name_changes_nothing() -> None:
    opened: list[RecordingUnitOfWork] = []

    def new_uow() -> RecordingUnitOfWork:
        opened.append(RecordingUnitOfWork())
        return opened[-1]

    async def policy(event: ScheduleConfirmed, uow: RecordingUnitOfWork) -> None:
        raise AssertionError("not subscribed")

    handler = PolicyHandler("x_svc", {ScheduleConfirmed: policy}, new_uow)
    await handler(events_pb2.EventEnvelope(event_id="e-1", event_type="SomethingNew"))
    assert opened == []


async def test_dependencies_are_bound_to_the_policies_that_name_them() -> None:
    calls: list[tuple[str, object]] = []

    async def with_bell(event: object, uow: object, bell: str) -> None:
        calls.append(("with_bell", bell))

    async def without(event: object, uow: object) -> None:
        calls.append(("without", None))

    bound = bind({int: with_bell, str: without}, bell="ding")
    await bound[int](1, None)
    await bound[str]("x", None)
    assert calls == [("with_bell", "ding"), ("without", None)]
    with pytest.raises(TypeError, match="schedules"):
        bind({int: with_bell}, schedules=object())


def test_a_policy_that_calls_another_service_runs_alone_also_once_bound() -> None:
    """manager_svc's OrderCancelled asks trainer_svc: never inside a batch's transaction."""
    cancelled = events_pb2.EventEnvelope(event_id="e-1", event_type="OrderCancelled")
    placed = events_pb2.EventEnvelope(event_id="e-2", event_type="OrderPlaced")
    for table in (MANAGER_POLICIES, bind(MANAGER_POLICIES, schedules=object())):
        handler = PolicyHandler("manager_svc", table, RecordingUnitOfWork)
        assert handler.runs_alone(cancelled)
        assert not handler.runs_alone(placed)
    assert not handler.batches, "a unit of work without batches: one event at a time"
