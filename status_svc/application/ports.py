"""What the use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ptkit.ports import UnitOfWork as BaseUnitOfWork
from status_svc.domain.model import OrderStatus, OrderStatusView
from status_svc.domain.notifications import Notification


@dataclass(frozen=True)
class StatusFilter:
    """Which views to list; None matches any. The API has no paging: a list holds the
    ``limit`` most recently updated views."""

    customer_id: str | None = None
    trainer_id: str | None = None
    order_status: OrderStatus | None = None
    limit: int = 500


class OrderStatusViews(Protocol):
    async def find(self, order_id: str) -> OrderStatusView | None: ...

    async def get(self, order_id: str) -> OrderStatusView:
        """Raises OrderStatusNotFound."""
        ...

    async def add(self, view: OrderStatusView) -> None: ...

    async def list(self, wanted: StatusFilter) -> list[OrderStatusView]:
        """Most recently updated first."""
        ...

    async def with_class_results(self, customer_id: str) -> list[OrderStatusView]:
        """The customer's views that hold a class result, oldest result first."""
        ...


class Notifications(Protocol):
    async def add(self, notification: Notification) -> None:
        """Record it once: adding the same notification_id again changes nothing."""
        ...

    async def list(self, customer_id: str) -> list[Notification]:
        """Oldest first (by when the class result was registered)."""
        ...

    async def last_sequence(self) -> int:
        """The position of the newest notification recorded so far (0: none)."""
        ...

    async def since(self, customer_id: str, sequence: int) -> list[Notification]:
        """The customer's notifications recorded after ``sequence``, in order, each with
        its sequence. Notifications become visible in sequence order: once one is seen,
        none with a smaller sequence appears later."""
        ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    views: OrderStatusViews
    notifications: Notifications
