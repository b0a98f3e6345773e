"""What the fault-isolation tests and the breaker benchmark share: a front desk that uses
the platform through the gateway as customers and managers do, and probes of Envoy's
trainer_internal cluster (admin stats, runtime fault switch, a burst of concurrent
CancelSchedule calls on the internal listener)."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ptctl.launcher import Platform
from ptkit.auth import Role
from ptkit.tokens import mint_token
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.helpers import bearer, wait_for

T = TypeVar("T")

ACTIVE_ASSIGNMENT = (
    manager.ASSIGNMENT_STATUS_TRAINER_ASSIGNED,
    manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED,
)
NOT_THERE_YET = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
FAULT_DELAY_PERCENT_KEY = "fault.http.delay.fixed_delay_percent"
MANAGER_SVC_SUBJECT = "manager_svc"


def manager_svc_metadata(platform: Platform) -> tuple[tuple[str, str]]:
    """manager_svc's token (the service role, signed with the platform's service key), for
    calls on the internal listener as manager_svc makes them."""
    trusted = platform.config.jwt
    token = mint_token(
        platform.service_keys,
        Role.SERVICE,
        MANAGER_SVC_SUBJECT,
        issuer=trusted.issuer,
        audience=trusted.audience,
    )
    return bearer(token)


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def absent_while_down(read: Callable[[], T]) -> T | None:
    """``read()``, or None while the thing is not there yet or its service is down."""
    try:
        return read()
    except grpc.RpcError as error:
        if error.code() in NOT_THERE_YET:
            return None
        raise


class Desk:
    """A customer and a manager using the platform through the gateway."""

    def __init__(self, platform: Platform, channel: grpc.Channel) -> None:
        self.platform = platform
        self.orders = order_grpc.OrderServiceStub(channel)
        self.managers = manager_grpc.ManagerServiceStub(channel)
        self.trainers = trainer_grpc.TrainerServiceStub(channel)
        self.status = status_grpc.StatusServiceStub(channel)
        self.customer_id = f"cust-{uuid.uuid4().hex[:8]}"
        self.customer = bearer(platform.token("customer", self.customer_id))
        self.manager = bearer(platform.token("manager", "manager-1"))

    # -- commands ----------------------------------------------------------------------
    def place_order(self, class_name: str = "Pilates 1:1") -> str:
        placed = self.orders.PlaceOrder(
            order.PlaceOrderRequest(customer_name="Alice", class_name=class_name),
            metadata=self.customer,
            timeout=5,
        )
        return placed.order_id

    def cancel_order(self, order_id: str) -> order.Order:
        return self.orders.CancelOrder(
            order.CancelOrderRequest(order_id=order_id, reason="ill"),
            metadata=self.customer,
            timeout=5,
        )

    def register_trainer(self, name: str = "Kim") -> str:
        return self.managers.RegisterTrainer(
            manager.RegisterTrainerRequest(name=name), metadata=self.manager, timeout=5
        ).trainer_id

    def assign(self, order_id: str, trainer_id: str) -> None:
        """Assign once manager_svc opened the assignment, then wait for the schedule."""
        self.assignment_in(order_id, (manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,))
        self.managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=order_id, trainer_id=trainer_id),
            metadata=self.manager,
            timeout=5,
        )
        self.schedule_in(order_id, (trainer.SCHEDULE_STATUS_REQUESTED,))

    def confirm(self, order_id: str, trainer_id: str, hours_from_now: int = 24) -> None:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours_from_now)
        self.trainers.ConfirmSchedule(
            trainer.ConfirmScheduleRequest(
                order_id=order_id, start_time=timestamp(start), duration_minutes=60
            ),
            metadata=bearer(self.platform.token("trainer", trainer_id)),
            timeout=5,
        )
        self.assignment_in(order_id, (manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED,))

    # -- reads -------------------------------------------------------------------------
    def assignment(self, order_id: str) -> manager.Assignment | None:
        return absent_while_down(
            lambda: self.managers.GetAssignment(
                manager.GetAssignmentRequest(order_id=order_id), metadata=self.manager, timeout=5
            )
        )

    def schedule(self, order_id: str) -> trainer.Schedule | None:
        return absent_while_down(
            lambda: self.trainers.GetSchedule(
                trainer.GetScheduleRequest(order_id=order_id), metadata=self.manager, timeout=5
            )
        )

    def view(self, order_id: str) -> status.OrderStatus | None:
        return absent_while_down(
            lambda: self.status.GetOrderStatus(
                status.GetOrderStatusRequest(order_id=order_id), metadata=self.manager, timeout=5
            )
        )

    def assignment_in(
        self, order_id: str, wanted: tuple[int, ...], timeout: float = 20
    ) -> manager.Assignment:
        def found() -> manager.Assignment | None:
            current = self.assignment(order_id)
            return current if current is not None and current.status in wanted else None

        return wait_for(found, timeout=timeout, what=f"assignment of {order_id} in {wanted}")

    def schedule_in(
        self, order_id: str, wanted: tuple[int, ...], timeout: float = 20
    ) -> trainer.Schedule:
        def found() -> trainer.Schedule | None:
            current = self.schedule(order_id)
            return current if current is not None and current.status in wanted else None

        return wait_for(found, timeout=timeout, what=f"schedule of {order_id} in {wanted}")

    def view_where(self, order_id: str, timeout: float = 20, **wanted: int) -> status.OrderStatus:
        def found() -> status.OrderStatus | None:
            current = self.view(order_id)
            if current is None or any(getattr(current, k) != v for k, v in wanted.items()):
                return None
            return current

        return wait_for(found, timeout=timeout, what=f"status view of {order_id} with {wanted}")

    def all_cancelled(self, order_id: str) -> bool:
        """Assignment, schedule and status view of the order all show CANCELLED."""
        assignment = self.assignment(order_id)
        schedule = self.schedule(order_id)
        view = self.view(order_id)
        return (
            assignment is not None
            and assignment.status == manager.ASSIGNMENT_STATUS_CANCELLED
            and schedule is not None
            and schedule.status == trainer.SCHEDULE_STATUS_CANCELLED
            and view is not None
            and view.order_status == order.ORDER_STATUS_CANCELLED
            and view.assignment_status == manager.ASSIGNMENT_STATUS_CANCELLED
            and view.schedule_status == trainer.SCHEDULE_STATUS_CANCELLED
        )


# -- Envoy's trainer_internal cluster -------------------------------------------------
def envoy_counters(platform: Platform, cluster: str = "trainer_internal") -> dict[str, int]:
    """Counters and gauges of one cluster, without the ``cluster.<name>.`` prefix."""
    stats = platform.admin.stats(f"^cluster\\.{cluster}\\.")
    prefix = f"cluster.{cluster}."
    return {s["name"].removeprefix(prefix): s["value"] for s in stats if "value" in s}


def shed_by_breaker(counters: dict[str, int]) -> int:
    """Requests the circuit breaker refused (max_requests / max_pending_requests)."""
    return counters["upstream_rq_pending_overflow"] + counters["upstream_rq_active_overflow"]


def set_fault_delay_percent(platform: Platform, percent: int) -> None:
    """Change at run time the share of trainer calls Envoy's fault filter delays."""
    platform.admin.post(f"/runtime_modify?{FAULT_DELAY_PERCENT_KEY}={percent}")


def internal_address(platform: Platform) -> str:
    internal = platform.config.gateway.internal
    return f"{internal.host}:{internal.port}"


@dataclass(frozen=True)
class CallOutcome:
    code: grpc.StatusCode
    seconds: float
    details: str

    @property
    def shed(self) -> bool:
        """Refused by the circuit breaker without reaching trainer_svc."""
        return "overflow" in self.details


def cancel_schedule_burst(
    platform: Platform, calls: int, timeout: float = 5.0
) -> list[CallOutcome]:
    """``calls`` concurrent CancelSchedule calls on the internal listener, as manager_svc
    makes them (its token), each timed from the burst's start to its answer."""
    metadata = manager_svc_metadata(platform)
    answered_at: dict[int, float] = {}

    def stamp(number: int) -> Callable[[grpc.Future], None]:
        return lambda _: answered_at.setdefault(number, time.monotonic())

    with grpc.insecure_channel(internal_address(platform)) as channel:
        grpc.channel_ready_future(channel).result(timeout=5)
        stub = trainer_grpc.TrainerServiceStub(channel)
        started = time.monotonic()
        futures = []
        for number in range(calls):
            future = stub.CancelSchedule.future(
                trainer.CancelScheduleRequest(order_id=str(uuid.uuid4()), reason="burst"),
                metadata=metadata,
                timeout=timeout,
            )
            future.add_done_callback(stamp(number))
            futures.append(future)
        errors = [future.exception() for future in futures]
        wait_for(lambda: len(answered_at) == calls, timeout=5, what="every burst call answered")
    return [
        CallOutcome(
            error.code() if error else grpc.StatusCode.OK,
            answered_at[number] - started,
            (error.details() or "") if error else "",
        )
        for number, error in enumerate(errors)
    ]


# -- Prometheus metrics of a service ---------------------------------------------------
def metric(platform: Platform, context: str, name: str, **labels: str) -> float:
    """The sum of one Prometheus series of a service over the samples matching ``labels``."""
    port = platform.config.metrics_ports[context][0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cancels_retried(platform: Platform) -> float:
    """How often manager_svc nak'ed an OrderCancelled for a later retry."""
    return metric(
        platform,
        "manager",
        "pt_events_redelivered_total",
        consumer="manager_svc",
        event_type="OrderCancelled",
    )
