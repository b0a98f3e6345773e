"""Notification: a message telling a customer that a class result is ready, or that a
cancellation could not be applied because the class had already been held."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from .events import CancellationRefused, ClassResultRegistered
from .model import OrderStatusView

NOTIFICATION_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13")


class NotificationKind(enum.Enum):
    """What a notification tells the customer."""

    CLASS_RESULT_READY = "CLASS_RESULT_READY"
    CANCELLATION_REFUSED = "CANCELLATION_REFUSED"


def notification_id_for(event_id: str) -> str:
    """The same event always gives the same notification, so a redelivery never doubles it."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, event_id))


@dataclass(frozen=True)
class Notification:
    notification_id: str
    customer_id: str
    order_id: str
    created_at: datetime | None
    class_name: str = ""
    """Read from the order's view when the notification is shown (it may arrive later
    than the result), so it is not stored with the notification."""
    kind: NotificationKind = NotificationKind.CLASS_RESULT_READY
    sequence: int = field(default=0, compare=False)
    """Its position in the order notifications were recorded (0 until it is stored): a
    watcher resumes after the last one it received. Not part of what the notification
    says: rebuilt or replayed, it is the same notification."""

    @classmethod
    def of_result(cls, event: ClassResultRegistered, view: OrderStatusView) -> Notification:
        return cls._telling(NotificationKind.CLASS_RESULT_READY, event, view)

    @classmethod
    def of_refused_cancellation(
        cls, event: CancellationRefused, view: OrderStatusView
    ) -> Notification:
        return cls._telling(NotificationKind.CANCELLATION_REFUSED, event, view)

    @classmethod
    def _telling(
        cls,
        kind: NotificationKind,
        event: ClassResultRegistered | CancellationRefused,
        view: OrderStatusView,
    ) -> Notification:
        return cls(
            notification_id=notification_id_for(event.event_id),
            customer_id=event.customer_id or view.customer_id,
            order_id=event.order_id,
            created_at=event.occurred_at,
            class_name=view.class_name,
            kind=kind,
        )

    @property
    def message(self) -> str:
        if self.kind is NotificationKind.CANCELLATION_REFUSED:
            of_class = f" of '{self.class_name}'" if self.class_name else ""
            return (
                f"Your cancellation{of_class} could not be applied: the class had already "
                "been held, so the order is completed and its result is available"
            )
        if self.class_name:
            return f"Your class result for '{self.class_name}' is ready"
        return "Your class result is ready"
