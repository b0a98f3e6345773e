"""What the use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ptkit.paging import Keyset, PageRequest, SortKey
from ptkit.ports import UnitOfWork as BaseUnitOfWork
from status_svc.domain.model import AssignmentStatus, OrderStatus, OrderStatusView
from status_svc.domain.notifications import Notification

VIEW_PAGES = Keyset(
    "order_statuses",
    SortKey("updated_at", datetime, descending=True, nullable=True),
    SortKey("order_id"),
)
"""Most recently updated first. A view updated while a client pages moves to the front:
it may then be missed or listed twice (AIP-158 allows it; the list is a live view)."""

CLASS_RESULT_PAGES = Keyset(
    "class_results",
    SortKey("result_recorded_at", datetime, nullable=True),
    SortKey("order_id"),
)
"""Oldest result first."""

NOTIFICATION_PAGES = Keyset(
    "notifications",
    SortKey("created_at", datetime, nullable=True),
    SortKey("notification_id"),
)
"""Oldest first, by when the class result was registered."""


@dataclass(frozen=True)
class StatusFilter:
    """Which views to list; None matches any."""

    customer_id: str | None = None
    trainer_id: str | None = None
    order_status: OrderStatus | None = None
    assignment_status: AssignmentStatus | None = None
    """As :attr:`OrderStatusView.assignment_status` derives it."""

    def as_filters(self) -> dict[str, str | None]:
        """What a page token is bound to (the assignment status only when set, so that
        the tokens of the other filters read as they did before it existed)."""
        filters = {
            "customer_id": self.customer_id,
            "trainer_id": self.trainer_id,
            "order_status": None if self.order_status is None else self.order_status.value,
        }
        if self.assignment_status is not None:
            filters["assignment_status"] = self.assignment_status.value
        return filters


class OrderStatusViews(Protocol):
    async def find(self, order_id: str) -> OrderStatusView | None: ...

    async def get(self, order_id: str) -> OrderStatusView:
        """Raises OrderStatusNotFound."""
        ...

    async def add(self, view: OrderStatusView) -> None: ...

    async def list(self, wanted: StatusFilter, page: PageRequest) -> list[OrderStatusView]:
        """The page's views (at most ``page.limit``) in VIEW_PAGES order."""
        ...

    async def with_class_results(
        self, customer_id: str, page: PageRequest
    ) -> list[OrderStatusView]:
        """The page's views of the customer that hold a class result, in
        CLASS_RESULT_PAGES order."""
        ...


class Notifications(Protocol):
    async def add(self, notification: Notification) -> None:
        """Record it once: adding the same notification_id again changes nothing."""
        ...

    async def list(self, customer_id: str, page: PageRequest) -> list[Notification]:
        """The page's notifications of the customer in NOTIFICATION_PAGES order."""
        ...

    async def last_sequence(self) -> int:
        """The position of the newest notification recorded so far (0: none)."""
        ...

    async def since(self, customer_id: str, sequence: int) -> list[Notification]:
        """The customer's notifications recorded after ``sequence``, in order, each with
        its sequence. Notifications become visible in sequence order: once one is seen,
        none with a smaller sequence appears later."""
        ...

    async def recorded_after(self, sequence: int, limit: int) -> list[Notification]:
        """Every customer's notifications recorded after ``sequence``, in order, at most
        ``limit``: what one feed reads for all open watches (same visibility as ``since``)."""
        ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    views: OrderStatusViews
    notifications: Notifications
