"""The cancel race, made deterministic with real processes (issue 10, ADR 0007).

A customer cancels a confirmed order while manager_svc is stopped, so nobody asks
trainer_svc to cancel the schedule; meanwhile the trainer holds the class and registers
its result. When manager_svc comes back, CancelSchedule is refused: the platform then
ends consistent, read only through the gateway: the order is held after all (COMPLETED,
the refused cancellation recorded), the schedule is CLASS_COMPLETED, the assignment is
not cancelled and records the refusal, the view shows COMPLETED with the result and the
refusal, and the customer is told the cancellation could not be applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from ptctl.verify import Target, audit
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from tests.conftest import fresh_platform
from tests.fault_kit import Desk
from tests.helpers import bearer, wait_for

T = TypeVar("T")
RESULT = "Great form, +5 kg on deadlift"
CATCH_UP_S = 45.0
"""manager_svc restarts, catches up, asks trainer_svc through Envoy and publishes; order_svc
and status_svc follow. Seconds on an idle machine; the margin is for a loaded runner."""


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    platform = fresh_platform(tmp_path)
    platform.start()
    try:
        with grpc.insecure_channel(platform.gateway_address) as channel:
            yield Desk(platform, channel)
    finally:
        platform.stop()


def get_order(desk: Desk, order_id: str) -> order.Order:
    return desk.orders.GetOrder(
        order.GetOrderRequest(order_id=order_id), metadata=desk.customer, timeout=5
    )


def notifications(desk: Desk) -> list[status.Notification]:
    return list(
        desk.status.ListNotifications(
            status.ListNotificationsRequest(customer_id=desk.customer_id),
            metadata=desk.customer,
            timeout=5,
        ).notifications
    )


def until(read: Callable[[], T | None], holds: Callable[[T], bool], what: str) -> T:
    """What ``read()`` gives once ``holds`` is true of it (None: not there yet, or down)."""

    def found() -> T | None:
        current = read()
        return current if current is not None and holds(current) else None

    return wait_for(found, timeout=CATCH_UP_S, what=what)


def test_a_cancellation_that_came_after_the_class_ends_held_everywhere(desk: Desk) -> None:
    platform = desk.platform
    coach = desk.register_trainer()
    order_id = desk.place_order("Pilates 1:1")
    desk.assign(order_id, coach)
    desk.confirm(order_id, coach)
    desk.view_where(order_id, order_status=order.ORDER_STATUS_CONFIRMED)

    # hold manager_svc's consumer: OrderCancelled waits on the stream
    platform.stop_service("manager")
    assert desk.cancel_order(order_id).status == order.ORDER_STATUS_CANCELLED
    held = desk.trainers.RegisterClassResult(
        trainer.RegisterClassResultRequest(order_id=order_id, result=RESULT),
        metadata=bearer(platform.token("trainer", coach)),
        timeout=5,
    )
    assert held.status == trainer.SCHEDULE_STATUS_CLASS_COMPLETED
    # the race happened: the read side shows a result on a cancelled order
    until(
        lambda: desk.view(order_id),
        lambda v: v.order_status == order.ORDER_STATUS_CANCELLED and v.class_result == RESULT,
        "the class result in the view of the cancelled order",
    )

    # release: manager_svc handles OrderCancelled, trainer_svc refuses, the platform compensates
    platform.start_service("manager")
    completed = until(
        lambda: get_order(desk, order_id),
        lambda o: o.status == order.ORDER_STATUS_COMPLETED,
        f"order {order_id} held after the refused cancellation",
    )
    assert "class already held" in completed.cancellation_refused_reason
    assert completed.cancel_reason == "ill"

    schedule = desk.schedule_in(order_id, (trainer.SCHEDULE_STATUS_CLASS_COMPLETED,))
    assert schedule.class_result == RESULT

    assignment = until(
        lambda: desk.assignment(order_id),
        lambda a: a.cancellation_refused_reason != "",
        f"the refused cancellation on the assignment of {order_id}",
    )
    assert (assignment.status, assignment.trainer_id) == (
        manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED,
        coach,
    )
    assert assignment.cancellation_refused_reason == completed.cancellation_refused_reason

    view = until(
        lambda: desk.view(order_id),
        lambda v: (
            v.order_status == order.ORDER_STATUS_COMPLETED and v.cancellation_refused_reason != ""
        ),
        f"the held order and its refused cancellation in the view of {order_id}",
    )
    assert (
        view.assignment_status,
        view.schedule_status,
        view.class_result,
        view.cancellation_refused_reason,
    ) == (
        manager.ASSIGNMENT_STATUS_ORDER_CONFIRMED,
        trainer.SCHEDULE_STATUS_CLASS_COMPLETED,
        RESULT,
        completed.cancellation_refused_reason,
    )

    told = until(
        lambda: [n for n in notifications(desk) if n.order_id == order_id],
        lambda sent: len(sent) == 2,
        "the result and the cancellation-refused notifications",
    )
    assert [n.kind for n in told] == [
        status.NOTIFICATION_KIND_CLASS_RESULT_READY,
        status.NOTIFICATION_KIND_CANCELLATION_REFUSED,
    ]
    refused = told[1]
    assert refused.customer_id == desk.customer_id
    assert "could not be applied" in refused.message
    assert "already been held" in refused.message

    # the audit that would have caught the race finds every part agreeing
    report = audit(Target.of_platform(platform), settle_seconds=10)
    assert report.clean, report.summary()
