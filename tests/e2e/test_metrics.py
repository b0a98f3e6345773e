"""Every service's Prometheus endpoint during an end-to-end run: a booking through the
gateway moves the RPC, event and outbox counters of each service it touches."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client.parser import text_string_to_metric_families

from ptctl.launcher import Platform
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.helpers import bearer, not_found_is_none, wait_for

CONTEXTS = ("order", "manager", "trainer", "status")
ORDER = "/ptplatform.order.v1.OrderService/"
MANAGER = "/ptplatform.manager.v1.ManagerService/"
TRAINER = "/ptplatform.trainer.v1.TrainerService/"
STATUS = "/ptplatform.status.v1.StatusService/"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True)
class Sample:
    """One time series of one service, summed over its replicas."""

    context: str
    name: str
    labels: dict[str, str]

    def value(self, scrapes: dict[str, Samples]) -> float | None:
        return scrapes[self.context].get((self.name, frozenset(self.labels.items())))

    def __str__(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.context}_svc {self.name}{{{labels}}}"


def grpc_labels(method: str, grpc_type: str = "unary") -> dict[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": name}


def rpcs(context: str, method: str, code: str = "OK") -> Sample:
    return Sample(context, "grpc_server_handled_total", {**grpc_labels(method), "grpc_code": code})


def latency(context: str, method: str) -> Sample:
    return Sample(context, "grpc_server_handling_seconds_count", grpc_labels(method))


def handled(context: str, event_type: str) -> Sample:
    labels = {"consumer": f"{context}_svc", "event_type": event_type}
    return Sample(context, "pt_events_handled_total", labels)


def published(context: str) -> Sample:
    return Sample(context, "pt_outbox_published_total", {"source": context})


MOVED_BY_A_BOOKING = [
    rpcs("order", ORDER + "PlaceOrder"),
    rpcs("order", ORDER + "GetOrder", "InvalidArgument"),
    rpcs("manager", MANAGER + "RegisterTrainer"),
    rpcs("manager", MANAGER + "AssignTrainer"),
    rpcs("trainer", TRAINER + "ConfirmSchedule"),
    rpcs("status", STATUS + "GetOrderStatus"),
    latency("order", ORDER + "PlaceOrder"),
    latency("manager", MANAGER + "AssignTrainer"),
    latency("trainer", TRAINER + "ConfirmSchedule"),
    latency("status", STATUS + "GetOrderStatus"),
    handled("order", "ScheduleConfirmed"),
    handled("manager", "OrderPlaced"),
    handled("manager", "ScheduleConfirmed"),
    handled("trainer", "TrainerAssigned"),
    handled("status", "OrderPlaced"),
    handled("status", "TrainerAssigned"),
    handled("status", "ScheduleConfirmed"),
    handled("status", "OrderConfirmed"),
    published("order"),
    published("manager"),
    published("trainer"),
]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_all(platform: Platform) -> dict[str, Samples]:
    """Each service's samples, summed over its replicas."""
    scrapes: dict[str, Samples] = {}
    for context in CONTEXTS:
        total: Samples = {}
        for port in platform.config.metrics_ports[context]:
            for key, value in scrape(port).items():
                total[key] = total.get(key, 0.0) + value
        scrapes[context] = total
    return scrapes


def unmoved(before: dict[str, Samples], after: dict[str, Samples]) -> list[str]:
    return [
        str(sample)
        for sample in MOVED_BY_A_BOOKING
        if (sample.value(after) or 0.0) <= (sample.value(before) or 0.0)
    ]


@dataclass
class Booking:
    orders: order_grpc.OrderServiceStub
    managers: manager_grpc.ManagerServiceStub
    trainers: trainer_grpc.TrainerServiceStub
    status: status_grpc.StatusServiceStub
    platform: Platform

    def run(self) -> None:
        """Place as a customer, register and assign a trainer as a manager, confirm as
        that trainer, read the status view as the customer."""
        customer = bearer(self.platform.token("customer", f"cust-{uuid.uuid4().hex[:8]}"))
        desk = bearer(self.platform.token("manager", "manager-1"))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        placed = self.orders.PlaceOrder(
            order.PlaceOrderRequest(customer_name="Mina", class_name="Metrics 1:1"),
            metadata=customer,
        )
        with pytest.raises(grpc.RpcError) as refused:
            self.orders.GetOrder(order.GetOrderRequest(order_id="not-an-id"), metadata=customer)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        coach = self.managers.RegisterTrainer(
            manager.RegisterTrainerRequest(name="Jun"), metadata=desk
        )
        coach_auth = bearer(self.platform.token("trainer", coach.trainer_id))
        get_assignment = manager.GetAssignmentRequest(order_id=placed.order_id)
        poll(lambda: self.managers.GetAssignment(get_assignment, metadata=desk), "assignment")
        self.managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=placed.order_id, trainer_id=coach.trainer_id),
            metadata=desk,
        )
        get_schedule = trainer.GetScheduleRequest(order_id=placed.order_id)
        poll(lambda: self.trainers.GetSchedule(get_schedule, metadata=coach_auth), "schedule")
        stamp = Timestamp()
        stamp.FromDatetime(start)
        self.trainers.ConfirmSchedule(
            trainer.ConfirmScheduleRequest(
                order_id=placed.order_id, start_time=stamp, duration_minutes=60
            ),
            metadata=coach_auth,
        )
        get_status = status.GetOrderStatusRequest(order_id=placed.order_id)
        poll(lambda: self.status.GetOrderStatus(get_status, metadata=customer), "status view")


def poll(call: Callable[[], object], what: str) -> object:
    """Call until the read model has the order (NOT_FOUND until its event arrived)."""
    return wait_for(not_found_is_none(call), timeout=20, interval=0.1, what=what)


@pytest.fixture(scope="module")
def before_booking(platform: Platform) -> dict[str, Samples]:
    """Every service's samples before one booking, which has run when the test starts."""
    before = scrape_all(platform)
    with grpc.insecure_channel(platform.gateway_address) as channel:
        Booking(
            orders=order_grpc.OrderServiceStub(channel),
            managers=manager_grpc.ManagerServiceStub(channel),
            trainers=trainer_grpc.TrainerServiceStub(channel),
            status=status_grpc.StatusServiceStub(channel),
            platform=platform,
        ).run()
    return before


def test_a_booking_moves_the_counters_of_every_service_it_touches(
    platform: Platform, before_booking: dict[str, Samples]
) -> None:
    last: list[str] = []

    def all_moved() -> bool:
        nonlocal last
        last = unmoved(before_booking, scrape_all(platform))
        return not last

    try:
        wait_for(all_moved, timeout=20, interval=0.2, what="counters moved")
    except AssertionError:
        pytest.fail(f"counters that did not move: {last}")


def test_every_publisher_reports_its_outbox_backlog_and_every_service_its_rpc_latency(
    platform: Platform, before_booking: dict[str, Samples]
) -> None:
    scrapes = scrape_all(platform)
    for context in CONTEXTS:
        for gauge in ("pt_outbox_backlog", "pt_outbox_oldest_age_seconds"):
            backlog = Sample(context, gauge, {"source": context}).value(scrapes)
            if context == "status":  # the read model publishes nothing: it has no outbox
                assert backlog is None, gauge
            else:
                assert backlog is not None, gauge
        names = {name for name, _ in scrapes[context]}
        histogram = {f"grpc_server_handling_seconds_{part}" for part in ("bucket", "count", "sum")}
        assert histogram <= names, context
    place_order = frozenset(grpc_labels(ORDER + "PlaceOrder").items())
    place_order_buckets = {
        dict(labels)["le"]
        for name, labels in scrapes["order"]
        if name == "grpc_server_handling_seconds_bucket" and place_order <= labels
    }
    assert {"0.005", "0.1", "1.0", "+Inf"} <= place_order_buckets


def test_a_watch_stream_is_counted_and_timed_when_its_client_leaves(platform: Platform) -> None:
    watch = STATUS + "WatchNotifications"
    stream = grpc_labels(watch, "server_stream")
    timed = Sample("status", "grpc_server_handling_seconds_count", stream)
    ended = Sample("status", "grpc_server_handled_total", {**stream, "grpc_code": "Canceled"})
    started = Sample("status", "grpc_server_started_total", stream)
    before = scrape_all(platform)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(platform.gateway_address) as channel:
        call = status_grpc.StatusServiceStub(channel).WatchNotifications(
            status.WatchNotificationsRequest(customer_id=customer),
            metadata=bearer(platform.token("customer", customer)),
        )
        wait_for(
            lambda: (started.value(scrape_all(platform)) or 0) > (started.value(before) or 0),
            timeout=10,
            what="the watch started",
        )
        call.cancel()

    def recorded() -> bool:
        after = scrape_all(platform)
        return all((s.value(after) or 0) > (s.value(before) or 0) for s in (timed, ended))

    wait_for(recorded, timeout=10, interval=0.1, what="the stream's duration and its end")


def test_every_consumer_reports_its_lag_and_its_dead_letters_from_jetstream(
    platform: Platform,
) -> None:
    def reported() -> bool:
        scrapes = scrape_all(platform)
        for context in CONTEXTS:
            durable = {"consumer": f"{context}_svc", "stream": "PT_EVENTS"}
            gauges = [
                Sample(context, "pt_consumer_pending_messages", durable),
                Sample(context, "pt_consumer_ack_pending_messages", durable),
                Sample(context, "pt_consumer_redelivered_messages", durable),
                Sample(context, "pt_dead_letters", {"consumer": f"{context}_svc"}),
            ]
            if any(gauge.value(scrapes) is None for gauge in gauges):
                return False
            if Sample(context, "pt_nats_connected", {}).value(scrapes) != 1:
                return False
        return True

    wait_for(reported, timeout=20, interval=0.2, what="consumer gauges of every service")
    for context in CONTEXTS:
        versions = [
            dict(labels)
            for name, labels in scrape_all(platform)[context]
            if name == "pt_build_info"
        ]
        assert versions and versions[0]["service"] == f"{context}_svc", context
