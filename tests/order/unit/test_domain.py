"""The Order state machine: PLACED -> CONFIRMED -> COMPLETED, or CANCELLED."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from order_svc.domain.events import OrderCancelled, OrderCompleted, OrderConfirmed, OrderPlaced
from order_svc.domain.model import ClassAlreadyHeld, Order, OrderAlreadyCancelled, OrderStatus
from ptkit.domain import InvalidValue

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def placed(**overrides: object) -> Order:
    fields = dict(
        order_id="o-1",
        customer_id="alice",
        customer_name="Alice",
        class_name="Pilates 1:1",
        preferred_start=None,
        request_id="",
        now=NOW,
    )
    fields.update(overrides)
    return Order.place(**fields)  # type: ignore[arg-type]


def in_state(status: OrderStatus) -> Order:
    order = placed()
    if status is OrderStatus.CONFIRMED:
        order.confirm(NOW)
    elif status is OrderStatus.COMPLETED:
        order.confirm(NOW)
        order.complete(NOW)
    elif status is OrderStatus.CANCELLED:
        order.cancel("changed my mind", NOW)
    order.events.clear()
    return order


def test_placing_an_order_records_order_placed() -> None:
    order = placed()
    assert order.status is OrderStatus.PLACED
    assert order.version == 1
    assert order.events == [
        OrderPlaced(
            order_id="o-1",
            customer_id="alice",
            customer_name="Alice",
            class_name="Pilates 1:1",
            preferred_start=None,
        )
    ]


def test_names_are_trimmed() -> None:
    order = placed(customer_name="  Alice  ", class_name=" Yoga ")
    assert (order.customer_name, order.class_name) == ("Alice", "Yoga")


@pytest.mark.parametrize("field", ["customer_name", "class_name"])
@pytest.mark.parametrize("value", ["", "   ", "x" * 101])
def test_empty_or_oversized_names_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidValue, match=field):
        placed(**{field: value})


@pytest.mark.parametrize("status", [OrderStatus.PLACED, OrderStatus.CONFIRMED])
def test_an_order_not_yet_held_can_be_cancelled(status: OrderStatus) -> None:
    order = in_state(status)
    order.cancel("ill", NOW)
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason == "ill"
    assert order.events == [OrderCancelled(order_id="o-1", customer_id="alice", reason="ill")]


def test_cancel_after_class_held_is_refused() -> None:
    order = in_state(OrderStatus.COMPLETED)
    with pytest.raises(ClassAlreadyHeld):
        order.cancel("too late", NOW)
    assert order.status is OrderStatus.COMPLETED
    assert order.events == []


def test_cancel_of_a_cancelled_order_is_refused() -> None:
    order = in_state(OrderStatus.CANCELLED)
    with pytest.raises(OrderAlreadyCancelled):
        order.cancel("again", NOW)
    assert order.events == []


def test_oversized_cancel_reason_is_refused_and_changes_nothing() -> None:
    order = placed()
    order.events.clear()
    with pytest.raises(InvalidValue, match="reason"):
        order.cancel("x" * 501, NOW)
    assert order.status is OrderStatus.PLACED
    assert order.events == []


def test_schedule_confirmed_confirms_a_placed_order() -> None:
    order = in_state(OrderStatus.PLACED)
    order.confirm(NOW)
    assert order.status is OrderStatus.CONFIRMED
    assert order.events == [OrderConfirmed(order_id="o-1", customer_id="alice")]


@pytest.mark.parametrize(
    "status", [OrderStatus.CONFIRMED, OrderStatus.COMPLETED, OrderStatus.CANCELLED]
)
def test_confirm_in_any_other_state_changes_nothing(status: OrderStatus) -> None:
    order = in_state(status)
    version = order.version
    order.confirm(NOW)
    assert order.status is status
    assert order.version == version
    assert order.events == []


@pytest.mark.parametrize("status", [OrderStatus.PLACED, OrderStatus.CONFIRMED])
def test_class_result_completes_the_order(status: OrderStatus) -> None:
    order = in_state(status)
    order.complete(NOW)
    assert order.status is OrderStatus.COMPLETED
    assert order.events == [OrderCompleted(order_id="o-1", customer_id="alice")]


@pytest.mark.parametrize("status", [OrderStatus.COMPLETED, OrderStatus.CANCELLED])
def test_complete_of_a_completed_or_cancelled_order_changes_nothing(status: OrderStatus) -> None:
    order = in_state(status)
    order.complete(NOW)
    assert order.status is status
    assert order.events == []


def test_every_change_moves_the_version() -> None:
    order = placed()
    order.confirm(NOW)
    order.complete(NOW)
    assert order.version == 3


def test_a_refused_cancellation_holds_the_cancelled_order_after_all() -> None:
    order = in_state(OrderStatus.CANCELLED)
    order.hold_after_refused_cancellation("class already held", NOW)
    assert (order.status, order.cancellation_refused_reason, order.cancel_reason) == (
        OrderStatus.COMPLETED,
        "class already held",
        "changed my mind",
    )
    assert order.events == [OrderCompleted(order_id="o-1", customer_id="alice")]


@pytest.mark.parametrize(
    "status", [OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.COMPLETED]
)
def test_a_refusal_changes_nothing_on_an_order_that_is_not_cancelled(status: OrderStatus) -> None:
    order = in_state(status)
    version = order.version
    order.hold_after_refused_cancellation("class already held", NOW)
    assert (order.status, order.version, order.cancellation_refused_reason, order.events) == (
        status,
        version,
        "",
        [],
    )


def test_a_held_order_refused_cancellation_cannot_be_cancelled_again() -> None:
    order = in_state(OrderStatus.CANCELLED)
    order.hold_after_refused_cancellation("class already held", NOW)
    with pytest.raises(ClassAlreadyHeld):
        order.cancel("again", NOW)
