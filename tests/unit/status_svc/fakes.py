"""In-memory stand-ins for status_svc's repositories and unit of work."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Self

from status_svc.application.ports import StatusFilter
from status_svc.domain.model import OrderStatusNotFound, OrderStatusView
from status_svc.domain.notifications import Notification

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FakeViews:
    def __init__(self) -> None:
        self.rows: dict[str, OrderStatusView] = {}

    async def find(self, order_id: str) -> OrderStatusView | None:
        return self.rows.get(order_id)

    async def get(self, order_id: str) -> OrderStatusView:
        if order_id not in self.rows:
            raise OrderStatusNotFound(order_id)
        return self.rows[order_id]

    async def add(self, view: OrderStatusView) -> None:
        self.rows[view.order_id] = view

    async def list(self, wanted: StatusFilter) -> list[OrderStatusView]:
        views = [
            view
            for view in self.rows.values()
            if wanted.customer_id in (None, view.customer_id)
            and wanted.trainer_id in (None, view.trainer_id)
            and wanted.order_status in (None, view.order_status)
        ]
        views.sort(key=lambda v: v.order_id)
        views.sort(key=lambda v: v.updated_at or EPOCH, reverse=True)
        return views[: wanted.limit]

    async def with_class_results(self, customer_id: str) -> list[OrderStatusView]:
        views = [v for v in self.rows.values() if v.customer_id == customer_id and v.class_result]
        return sorted(views, key=lambda v: (v.result_recorded_at or EPOCH, v.order_id))


class FakeNotifications:
    """Notifications by sequence number; ``add`` ignores a notification_id it holds."""

    def __init__(self, views: FakeViews) -> None:
        self.views = views
        self.rows: dict[int, Notification] = {}
        self.polls = 0

    def _shown(self, notification: Notification) -> Notification:
        view = self.views.rows.get(notification.order_id)
        return replace(notification, class_name=view.class_name if view else "")

    def record(self, notification: Notification, sequence: int | None = None) -> None:
        """Store as a replica would: ``sequence`` may be smaller than one already shown."""
        if any(n.notification_id == notification.notification_id for n in self.rows.values()):
            return
        self.rows[sequence or max(self.rows, default=0) + 1] = replace(notification, class_name="")

    async def add(self, notification: Notification) -> None:
        self.record(notification)

    async def list(self, customer_id: str) -> list[Notification]:
        mine = [self._shown(n) for n in self.rows.values() if n.customer_id == customer_id]
        return sorted(mine, key=lambda n: (n.created_at or EPOCH, n.notification_id))

    async def last_sequence(self) -> int:
        return max(self.rows, default=0)

    async def since(self, customer_id: str, sequence: int) -> list[Notification]:
        self.polls += 1
        return [
            self._shown(self.rows[seq])
            for seq in sorted(self.rows)
            if seq > sequence and self.rows[seq].customer_id == customer_id
        ]


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.views = FakeViews()
        self.notifications = FakeNotifications(self.views)
        self.commits = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1
