"""Tracing switched on (PT_TRACING=otlp) against a real OTLP receiver: one booking is one
trace across the four services, every consumer span is the child of the span that
recorded its event, and the log lines of a call and of the events it caused carry the
gateway's request id and the trace id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ptctl.launcher import Platform, PlatformConfig
from ptctl.otlp_sink import OtlpSink, ReceivedSpan
from ptkit.tracing import booking_ids
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.helpers import bearer, not_found_is_none, wait_for

SERVICES = {"order_svc", "manager_svc", "trainer_svc", "status_svc"}


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, sink: OtlpSink) -> Iterator[Platform]:
    config = PlatformConfig.ephemeral(
        tmp_path_factory.mktemp("traced"), service_env=sink.service_env()
    )
    with Platform(config) as running:
        yield running


@dataclass(frozen=True)
class Booking:
    order_id: str
    client_request_id: str
    gateway_request_id: str
    """The id Envoy made for PlaceOrder and answered in its x-request-id header."""


@pytest.fixture(scope="module")
def booking(traced: Platform) -> Booking:
    """Place (with a request id of the client's), assign, confirm and record the result,
    each as its own person, then wait for the customer's notification."""
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    customer = bearer(traced.token("customer", customer_id))
    desk = bearer(traced.token("manager", "manager-1"))
    mine = f"client-{uuid.uuid4()}"
    with grpc.insecure_channel(traced.gateway_address) as channel:
        orders = order_grpc.OrderServiceStub(channel)
        managers = manager_grpc.ManagerServiceStub(channel)
        trainers = trainer_grpc.TrainerServiceStub(channel)
        views = status_grpc.StatusServiceStub(channel)
        placed, call = orders.PlaceOrder.with_call(
            order.PlaceOrderRequest(customer_name="Mina", class_name="Traced 1:1"),
            metadata=(*customer, ("x-request-id", mine)),
        )
        answered = dict(call.initial_metadata())
        coach = managers.RegisterTrainer(manager.RegisterTrainerRequest(name="Jun"), metadata=desk)
        coach_auth = bearer(traced.token("trainer", coach.trainer_id))
        get_assignment = manager.GetAssignmentRequest(order_id=placed.order_id)
        wait_for(
            not_found_is_none(lambda: managers.GetAssignment(get_assignment, metadata=desk)),
            timeout=20,
            what="the assignment",
        )
        managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=placed.order_id, trainer_id=coach.trainer_id),
            metadata=desk,
        )
        get_schedule = trainer.GetScheduleRequest(order_id=placed.order_id)
        wait_for(
            not_found_is_none(lambda: trainers.GetSchedule(get_schedule, metadata=coach_auth)),
            timeout=20,
            what="the schedule",
        )
        start = Timestamp()
        start.FromDatetime(datetime.now(UTC).replace(microsecond=0) + timedelta(days=30))
        trainers.ConfirmSchedule(
            trainer.ConfirmScheduleRequest(
                order_id=placed.order_id, start_time=start, duration_minutes=60
            ),
            metadata=coach_auth,
        )
        trainers.RegisterClassResult(
            trainer.RegisterClassResultRequest(order_id=placed.order_id, result="Well done"),
            metadata=coach_auth,
        )
        wait_for(
            lambda: (
                views.ListNotifications(
                    status.ListNotificationsRequest(customer_id=customer_id), metadata=customer
                ).notifications
            ),
            timeout=20,
            what="the customer's notification",
        )
    return Booking(placed.order_id, mine, answered["x-request-id"])


def booking_trace(order_id: str) -> str:
    ids = booking_ids(order_id)
    assert ids is not None
    return format(ids[0], "032x")


def spans_of(
    sink: OtlpSink, trace_id: str, wanted: Callable[[list[ReceivedSpan]], bool]
) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []

    def arrived() -> bool:
        nonlocal spans
        spans = list(sink.of_trace(trace_id))
        return wanted(spans)

    wait_for(arrived, timeout=20, interval=0.2, what=f"the spans of trace {trace_id}")
    return spans


def test_one_booking_is_one_trace_across_the_four_services(
    sink: OtlpSink, booking: Booking
) -> None:
    trace_id = booking_trace(booking.order_id)
    assert trace_id == booking.order_id.replace("-", ""), "a booking's trace id is its order id"

    def complete(spans: list[ReceivedSpan]) -> bool:
        consumed = {(s.service, s.span.name) for s in spans if s.kind == "CONSUMER"}
        return (
            {s.service for s in spans} == SERVICES
            and (
                "status_svc",
                "process ClassResultRegistered",
            )
            in consumed
            and ("order_svc", "process ClassResultRegistered") in consumed
        )

    spans = spans_of(sink, trace_id, complete)
    names = {(s.service, s.span.name) for s in spans}
    roots = [s for s in spans if not s.parent_span_id]
    assert [(r.service, r.span.name) for r in roots] == [("order_svc", "booking")]
    for step in [
        ("manager_svc", "AssignTrainer"),
        ("trainer_svc", "ConfirmSchedule"),
        ("trainer_svc", "RegisterClassResult"),
        ("order_svc", "publish OrderPlaced"),
        ("manager_svc", "process OrderPlaced"),
        ("manager_svc", "publish TrainerAssigned"),
        ("trainer_svc", "process TrainerAssigned"),
        ("trainer_svc", "publish ScheduleConfirmed"),
        ("order_svc", "process ScheduleConfirmed"),
        ("order_svc", "publish OrderConfirmed"),
        ("status_svc", "process OrderConfirmed"),
        ("trainer_svc", "publish ClassResultRegistered"),
        ("status_svc", "process ClassResultRegistered"),
    ]:
        assert step in names, step
    every = {s.span_id for s in spans}
    assert all(s.parent_span_id in every for s in spans if s.parent_span_id), "no orphan"
    statements = {s.service for s in spans if s.kind == "CLIENT" and s.attribute("db.system")}
    assert statements == SERVICES, "every service's SQL statements are spans of the booking"


def test_each_consumer_span_is_the_child_of_the_span_that_recorded_its_event(
    sink: OtlpSink, booking: Booking
) -> None:
    spans = spans_of(
        sink,
        booking_trace(booking.order_id),
        lambda found: any(s.span.name == "process ClassResultRegistered" for s in found),
    )
    producers = {s.span_id: s for s in spans if s.kind == "PRODUCER"}
    consumers = [s for s in spans if s.kind == "CONSUMER"]
    assert len(consumers) >= 8
    for consumer in consumers:
        producer = producers.get(consumer.parent_span_id)
        assert producer is not None, consumer.span.name
        event_id = consumer.attribute("messaging.message.id")
        assert event_id and producer.attribute("messaging.message.id") == event_id
        assert consumer.span.name.removeprefix("process ") == producer.span.name.removeprefix(
            "publish "
        )


def test_a_step_of_another_person_links_to_the_call_it_was_made_in(
    sink: OtlpSink, booking: Booking
) -> None:
    spans = spans_of(
        sink,
        booking_trace(booking.order_id),
        lambda found: any(s.span.name == "RegisterClassResult" for s in found),
    )
    calls = {(s.trace_id, s.span_id): s for s in sink.spans() if s.kind == "SERVER"}
    for name in ("AssignTrainer", "ConfirmSchedule", "RegisterClassResult"):
        step = next(s for s in spans if s.span.name == name)
        linked = [calls.get(link) for link in step.links]
        assert any(c is not None and c.span.name.endswith("/" + name) for c in linked), name


def log_lines(platform: Platform, service: str) -> list[dict[str, Any]]:
    path = Path(platform.var_dir) / "log" / f"{service}.log"
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


def test_the_gateway_request_id_and_the_trace_id_are_in_the_logs_of_a_call_and_of_its_events(
    traced: Platform, sink: OtlpSink, booking: Booking
) -> None:
    assert booking.gateway_request_id and booking.gateway_request_id != booking.client_request_id
    placed = [
        line
        for line in log_lines(traced, "order_svc")
        if line.get("msg") == "call handled"
        and line.get("method", "").endswith("/PlaceOrder")
        and line.get("request_id") == booking.gateway_request_id
    ]
    assert len(placed) == 1, "the PlaceOrder call's line carries the gateway's request id"
    call = placed[0]
    assert call["client_request_id"] == booking.client_request_id
    assert call["order_id"] == booking.order_id
    servers = [
        s for s in sink.spans() if s.kind == "SERVER" and s.span.name.endswith("/PlaceOrder")
    ]
    assert call["trace_id"] in {s.trace_id for s in servers}, "the call's own trace"

    trace_id = booking_trace(booking.order_id)
    for service, event_type in [("manager_svc", "OrderPlaced"), ("status_svc", "OrderPlaced")]:

        def caused(line: dict[str, Any], event_type: str = event_type) -> bool:
            return (
                line.get("msg") == "event handled"
                and line.get("event_type") == event_type
                and line.get("order_id") == booking.order_id
            )

        found = wait_for(
            lambda service=service, caused=caused: [
                line for line in log_lines(traced, service) if caused(line)
            ],
            timeout=10,
            what=f"{service}'s line of {event_type}",
        )
        assert found[0]["request_id"] == booking.gateway_request_id, (service, event_type)
        assert found[0]["client_request_id"] == booking.client_request_id, (service, event_type)
        assert found[0]["trace_id"] == trace_id, (service, event_type)
