"""The whole booking flow through the real gateway, nats-server and four services
(seed requirements 1-11): place -> assign -> confirm -> result -> notification, and a
second order cancelled after confirmation."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ptctl.launcher import Platform
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.helpers import bearer, wait_for


@dataclass
class Studio:
    """Stubs for the four services, all through the gateway, and the people using them."""

    orders: order_grpc.OrderServiceStub
    managers: manager_grpc.ManagerServiceStub
    trainers: trainer_grpc.TrainerServiceStub
    status: status_grpc.StatusServiceStub
    customer: tuple[tuple[str, str]]
    manager: tuple[tuple[str, str]]
    customer_id: str


@pytest.fixture
def studio(platform: Platform) -> Iterator[Studio]:
    customer_id = f"cust-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(platform.gateway_address) as channel:
        yield Studio(
            orders=order_grpc.OrderServiceStub(channel),
            managers=manager_grpc.ManagerServiceStub(channel),
            trainers=trainer_grpc.TrainerServiceStub(channel),
            status=status_grpc.StatusServiceStub(channel),
            customer=bearer(platform.token("customer", customer_id)),
            manager=bearer(platform.token("manager", "manager-1")),
            customer_id=customer_id,
        )


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def view(studio: Studio, order_id: str) -> status.OrderStatus | None:
    try:
        return studio.status.GetOrderStatus(
            status.GetOrderStatusRequest(order_id=order_id), metadata=studio.customer
        )
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def view_where(studio: Studio, order_id: str, **expected: object) -> status.OrderStatus:
    def matches() -> status.OrderStatus | None:
        current = view(studio, order_id)
        if current is not None and all(getattr(current, k) == v for k, v in expected.items()):
            return current
        return None

    return wait_for(matches, timeout=20, what=f"status view of {order_id} with {expected}")


def assignment_where(studio: Studio, order_id: str, wanted: int) -> manager.Assignment:
    def matches() -> manager.Assignment | None:
        try:
            found = studio.managers.GetAssignment(
                manager.GetAssignmentRequest(order_id=order_id), metadata=studio.manager
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return found if found.status == wanted else None

    return wait_for(matches, timeout=20, what=f"assignment of {order_id} in {wanted}")


def schedule_where(studio: Studio, order_id: str, wanted: int, auth: object) -> trainer.Schedule:
    def matches() -> trainer.Schedule | None:
        try:
            found = studio.trainers.GetSchedule(
                trainer.GetScheduleRequest(order_id=order_id), metadata=auth
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return found if found.status == wanted else None

    return wait_for(matches, timeout=20, what=f"schedule of {order_id} in {wanted}")


def order_where(studio: Studio, order_id: str, wanted: int) -> order.Order:
    def matches() -> order.Order | None:
        found = studio.orders.GetOrder(
            order.GetOrderRequest(order_id=order_id), metadata=studio.customer
        )
        return found if found.status == wanted else None

    return wait_for(matches, timeout=20, what=f"order {order_id} in {wanted}")


def book_and_confirm(
    studio: Studio, platform: Platform, start: datetime
) -> tuple[str, str, object]:
    """Steps 1-5: place, assign, confirm. Returns (order_id, trainer_id, trainer auth)."""
    placed = studio.orders.PlaceOrder(
        order.PlaceOrderRequest(
            customer_name="Alice Kim", class_name="Pilates 1:1", preferred_start=timestamp(start)
        ),
        metadata=studio.customer,
    )
    view_where(
        studio,
        placed.order_id,
        order_status=order.ORDER_STATUS_PLACED,
        customer_id=studio.customer_id,
    )

    coach = studio.managers.RegisterTrainer(
        manager.RegisterTrainerRequest(name="Tom Lee"), metadata=studio.manager
    )
    coach_auth = bearer(platform.token("trainer", coach.trainer_id))
    assignment_where(studio, placed.order_id, manager.ASSIGNMENT_STATUS_AWAITING_TRAINER)
    assigned = studio.managers.AssignTrainer(
        manager.AssignTrainerRequest(order_id=placed.order_id, trainer_id=coach.trainer_id),
        metadata=studio.manager,
    )
    assert assigned.status == manager.ASSIGNMENT_STATUS_TRAINER_ASSIGNED

    schedule_where(studio, placed.order_id, trainer.SCHEDULE_STATUS_REQUESTED, coach_auth)
    confirmed = studio.trainers.ConfirmSchedule(
        trainer.ConfirmScheduleRequest(
            order_id=placed.order_id, start_time=timestamp(start), duration_minutes=60
        ),
        metadata=coach_auth,
    )
    assert confirmed.status == trainer.SCHEDULE_STATUS_CONFIRMED
    order_where(studio, placed.order_id, order.ORDER_STATUS_CONFIRMED)
    assignment_where(studio, placed.order_id, manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED)
    view_where(
        studio,
        placed.order_id,
        order_status=order.ORDER_STATUS_CONFIRMED,
        assignment_status=manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED,
        schedule_status=trainer.SCHEDULE_STATUS_CONFIRMED,
        trainer_id=coach.trainer_id,
        trainer_name="Tom Lee",
    )
    return placed.order_id, coach.trainer_id, coach_auth


class NotificationWatcher:
    """Consumes WatchNotifications in a thread; ready once the server fixed its start."""

    def __init__(self, studio: Studio) -> None:
        self.received: queue.Queue[status.Notification] = queue.Queue()
        self.call = studio.status.WatchNotifications(
            status.WatchNotificationsRequest(customer_id=studio.customer_id),
            metadata=studio.customer,
        )
        self.call.initial_metadata()  # blocks until the watch has its starting point
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            for notification in self.call:
                self.received.put(notification)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.CANCELLED

    def next(self, timeout: float = 20) -> status.Notification:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(timeout=5)


def test_a_class_is_booked_held_and_its_result_reaches_the_customer(
    studio: Studio, platform: Platform
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    watcher = NotificationWatcher(studio)
    try:
        order_id, trainer_id, coach_auth = book_and_confirm(studio, platform, start)

        held = studio.trainers.RegisterClassResult(
            trainer.RegisterClassResultRequest(
                order_id=order_id, result="Great form, +5 kg on deadlift"
            ),
            metadata=coach_auth,
        )
        assert held.status == trainer.SCHEDULE_STATUS_CLASS_COMPLETED

        notification = watcher.next()
        assert notification.order_id == order_id
        assert notification.customer_id == studio.customer_id
        assert "Pilates 1:1" in notification.message
    finally:
        watcher.close()

    order_where(studio, order_id, order.ORDER_STATUS_COMPLETED)
    final = view_where(
        studio,
        order_id,
        order_status=order.ORDER_STATUS_COMPLETED,
        schedule_status=trainer.SCHEDULE_STATUS_CLASS_COMPLETED,
        class_result="Great form, +5 kg on deadlift",
    )
    assert final.start_time.ToDatetime(tzinfo=UTC) == start
    assert final.customer_name == "Alice Kim"

    results = studio.status.ListClassResults(
        status.ListClassResultsRequest(customer_id=studio.customer_id), metadata=studio.customer
    ).results
    assert [(r.order_id, r.trainer_id, r.result) for r in results] == [
        (order_id, trainer_id, "Great form, +5 kg on deadlift")
    ]
    notifications = studio.status.ListNotifications(
        status.ListNotificationsRequest(customer_id=studio.customer_id), metadata=studio.customer
    ).notifications
    assert [n.notification_id for n in notifications] == [notification.notification_id]

    by_trainer = studio.status.ListOrderStatuses(
        status.ListOrderStatusesRequest(trainer_id=trainer_id), metadata=studio.manager
    ).statuses
    assert [s.order_id for s in by_trainer] == [order_id]


def test_an_order_cancelled_after_confirmation_is_cancelled_everywhere(
    studio: Studio, platform: Platform
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    order_id, _, coach_auth = book_and_confirm(studio, platform, start)

    cancelled = studio.orders.CancelOrder(
        order.CancelOrderRequest(order_id=order_id, reason="moved abroad"), metadata=studio.customer
    )
    assert cancelled.status == order.ORDER_STATUS_CANCELLED

    assignment_where(studio, order_id, manager.ASSIGNMENT_STATUS_CANCELLED)
    schedule_where(studio, order_id, trainer.SCHEDULE_STATUS_CANCELLED, coach_auth)
    view_where(
        studio,
        order_id,
        order_status=order.ORDER_STATUS_CANCELLED,
        assignment_status=manager.ASSIGNMENT_STATUS_CANCELLED,
        schedule_status=trainer.SCHEDULE_STATUS_CANCELLED,
    )
    with pytest.raises(grpc.RpcError) as error:
        studio.trainers.RegisterClassResult(
            trainer.RegisterClassResultRequest(order_id=order_id, result="no-show"),
            metadata=coach_auth,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_trainer_cannot_be_assigned_to_a_cancelled_order(studio: Studio) -> None:
    placed = studio.orders.PlaceOrder(
        order.PlaceOrderRequest(customer_name="Bo", class_name="Boxing"), metadata=studio.customer
    )
    studio.orders.CancelOrder(
        order.CancelOrderRequest(order_id=placed.order_id), metadata=studio.customer
    )
    assignment_where(studio, placed.order_id, manager.ASSIGNMENT_STATUS_CANCELLED)
    coach = studio.managers.RegisterTrainer(
        manager.RegisterTrainerRequest(name="Ann"), metadata=studio.manager
    )
    with pytest.raises(grpc.RpcError) as error:
        studio.managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=placed.order_id, trainer_id=coach.trainer_id),
            metadata=studio.manager,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    view_where(studio, placed.order_id, order_status=order.ORDER_STATUS_CANCELLED)


def test_ptctl_demo_walks_the_scenario(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    from ptctl.demo import run_demo

    assert run_demo(platform.gateway_address, platform.var_dir) == 0
    printed = capsys.readouterr().out
    assert "notification: Your class result for 'Pilates 1:1' is ready" in printed
    assert "view: order=CANCELLED assignment=CANCELLED schedule=CANCELLED" in printed
    assert printed.rstrip().endswith("demo complete.")
