"""Order: PLACED -> CONFIRMED -> COMPLETED, or CANCELLED (never after COMPLETED).

A cancellation that reached trainer_svc after the class was held is refused there: the
order goes CANCELLED -> COMPLETED with the refusal recorded (ADR 0007)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ptkit.domain import Aggregate, IllegalTransition, NotFound
from ptkit.statuses import OrderStatus
from ptkit.validation import require_text

from .events import OrderCancelled, OrderCompleted, OrderConfirmed, OrderPlaced

MAX_NAME_LENGTH = 100
MAX_REASON_LENGTH = 500


class OrderNotFound(NotFound):
    default_reason = "ORDER_NOT_FOUND"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found", metadata={"order_id": order_id})


class ClassAlreadyHeld(IllegalTransition):
    default_reason = "CLASS_ALREADY_HELD"

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order {order_id} cannot be cancelled: the class was already held",
            metadata={"order_id": order_id},
        )


class OrderAlreadyCancelled(IllegalTransition):
    default_reason = "ORDER_ALREADY_CANCELLED"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} is already cancelled", metadata={"order_id": order_id})


@dataclass(kw_only=True)
class Order(Aggregate):
    order_id: str
    customer_id: str
    customer_name: str
    class_name: str
    preferred_start: datetime | None
    request_id: str
    created_at: datetime
    updated_at: datetime
    status: OrderStatus = OrderStatus.PLACED
    cancel_reason: str = ""
    cancellation_refused_reason: str = ""
    """Why the cancellation could not be applied (the class had already been held);
    "" unless it was refused."""

    @classmethod
    def place(
        cls,
        *,
        order_id: str,
        customer_id: str,
        customer_name: str,
        class_name: str,
        preferred_start: datetime | None,
        request_id: str,
        now: datetime,
    ) -> Order:
        order = cls(
            order_id=order_id,
            customer_id=customer_id,
            customer_name=require_text("customer_name", customer_name, max_length=MAX_NAME_LENGTH),
            class_name=require_text("class_name", class_name, max_length=MAX_NAME_LENGTH),
            preferred_start=preferred_start,
            request_id=request_id,
            created_at=now,
            updated_at=now,
        )
        order._record(
            OrderPlaced(
                order_id=order.order_id,
                customer_id=order.customer_id,
                customer_name=order.customer_name,
                class_name=order.class_name,
                preferred_start=order.preferred_start,
            )
        )
        return order

    def cancel(self, reason: str, now: datetime) -> None:
        if self.status is OrderStatus.COMPLETED:
            raise ClassAlreadyHeld(self.order_id)
        if self.status is OrderStatus.CANCELLED:
            raise OrderAlreadyCancelled(self.order_id)
        reason = require_text(
            "reason", reason, max_length=MAX_REASON_LENGTH, required=False, multiline=True
        )
        self.status = OrderStatus.CANCELLED
        self.cancel_reason = reason
        self.updated_at = now
        self._record(
            OrderCancelled(
                order_id=self.order_id, customer_id=self.customer_id, reason=self.cancel_reason
            )
        )

    def confirm(self, now: datetime) -> None:
        """The trainer confirmed the schedule: the enrolment is complete.

        Only a PLACED order moves; a cancelled order stays cancelled (the cancellation
        flow cancels the schedule), and a late duplicate changes nothing.
        """
        if self.status is not OrderStatus.PLACED:
            return
        self.status = OrderStatus.CONFIRMED
        self.updated_at = now
        self._record(OrderConfirmed(order_id=self.order_id, customer_id=self.customer_id))

    def complete(self, now: datetime) -> None:
        """The class was held and its result registered.

        A result may overtake its ScheduleConfirmed (redelivery), so PLACED completes too;
        a cancelled or completed order does not change.
        """
        if self.status not in (OrderStatus.PLACED, OrderStatus.CONFIRMED):
            return
        self.status = OrderStatus.COMPLETED
        self.updated_at = now
        self._record(OrderCompleted(order_id=self.order_id, customer_id=self.customer_id))

    def hold_after_refused_cancellation(self, reason: str, now: datetime) -> None:
        """The customer cancelled, but the class had already been held, so the
        cancellation was refused: the order is held after all (CANCELLED -> COMPLETED)
        and the refusal is recorded. A repeated refusal changes nothing; an order that
        was never cancelled is not touched."""
        if self.status is not OrderStatus.CANCELLED:
            return
        self.status = OrderStatus.COMPLETED
        self.cancellation_refused_reason = (
            reason.strip()[:MAX_REASON_LENGTH] or "the class was already held"
        )
        self.updated_at = now
        self._record(OrderCompleted(order_id=self.order_id, customer_id=self.customer_id))
