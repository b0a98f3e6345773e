"""status_svc's repositories in memory, over the kit's one fake unit of work.

The contract suite (tests/status/integration/test_repository_contract.py) runs the same
tests against them and the SQL ones on SQLite and PostgreSQL. Outside a unit of work,
``uow.notifications.record(...)`` stores a notification as another replica's commit
would, and ``uow.notifications.polls`` counts the watch's looks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ptkit.paging import PageRequest, page_in_memory
from ptkit.testing import FakeUnitOfWork, InMemoryRepository, MemoryStore
from status_svc.application.ports import StatusFilter
from status_svc.domain.model import OrderStatusNotFound, OrderStatusView
from status_svc.domain.notifications import Notification


@dataclass
class StatusStore(MemoryStore):
    polls: int = 0
    """How often notifications were asked for ``since`` a sequence (the watch's looks)."""


class InMemoryViews(InMemoryRepository[OrderStatusView]):
    table = "order_status_views"
    key = "order_id"

    async def find(self, order_id: str) -> OrderStatusView | None:
        return self._find(order_id)

    async def get(self, order_id: str) -> OrderStatusView:
        view = await self.find(order_id)
        if view is None:
            raise OrderStatusNotFound(order_id)
        return view

    async def add(self, view: OrderStatusView) -> None:
        self._insert(view)

    async def list(self, wanted: StatusFilter, page: PageRequest) -> list[OrderStatusView]:
        views = [
            view
            for view in self._rows()
            if wanted.customer_id in (None, view.customer_id)
            and wanted.trainer_id in (None, view.trainer_id)
            and wanted.order_status in (None, view.order_status)
            and wanted.assignment_status in (None, view.assignment_status)
        ]
        return page_in_memory(views, page)

    async def with_class_results(
        self, customer_id: str, page: PageRequest
    ) -> list[OrderStatusView]:
        views = [v for v in self._rows() if v.customer_id == customer_id and v.class_result]
        return page_in_memory(views, page)


@dataclass(frozen=True)
class Recorded:
    """A row of the notifications table: its sequence number and the notification (the
    class name is not stored: it is read from the order's view)."""

    sequence: int
    notification: Notification

    @property
    def notification_id(self) -> str:
        return self.notification.notification_id


class InMemoryNotifications(InMemoryRepository[Recorded]):
    table = "notifications"
    key = "notification_id"

    def _shown(self, views: dict[str, OrderStatusView], recorded: Recorded) -> Notification:
        view = views.get(recorded.notification.order_id)
        return replace(
            recorded.notification,
            class_name=view.class_name if view else "",
            sequence=recorded.sequence,
        )

    def _sequence(self) -> int:
        stored = [r.sequence for r in [*self.rows.values(), *self._committed().values()]]
        return self._store.next_sequence(self.table, at_least=max(stored, default=0))

    def _committed(self) -> dict[str, Recorded]:
        return self._store.table(self.table)

    def changed(self) -> list[Recorded]:
        # INSERT ... ON CONFLICT DO NOTHING: a copy another unit of work committed meanwhile wins
        return [r for r in super().changed() if r.notification_id not in self._committed()]

    def record(self, notification: Notification) -> None:
        """Outside a unit of work: store it as another replica's commit would (the next
        sequence: the SQL repositories make notifications visible in sequence order)."""
        assert self._working is None, "record() stands for another replica: call it outside"
        if notification.notification_id in self.rows:
            return
        self.rows[notification.notification_id] = Recorded(
            self._sequence(), replace(notification, class_name="")
        )

    @property
    def polls(self) -> int:
        assert isinstance(self._store, StatusStore)
        return self._store.polls

    async def add(self, notification: Notification) -> None:
        self._inside()
        if notification.notification_id in self.rows:
            return
        recorded = Recorded(self._sequence(), replace(notification, class_name=""))
        self.rows[recorded.notification_id] = recorded
        self._track(recorded, None)

    async def list(self, customer_id: str, page: PageRequest) -> list[Notification]:
        views = self._table(InMemoryViews.table)
        mine = [
            self._shown(views, r) for r in self._rows() if r.notification.customer_id == customer_id
        ]
        return page_in_memory(mine, page)

    async def last_sequence(self) -> int:
        return max((r.sequence for r in self._rows()), default=0)

    async def since(self, customer_id: str, sequence: int) -> list[Notification]:
        if isinstance(self._store, StatusStore):
            self._store.polls += 1
        views = self._table(InMemoryViews.table)
        return [
            self._shown(views, r)
            for r in sorted(self._rows(), key=lambda r: r.sequence)
            if r.sequence > sequence and r.notification.customer_id == customer_id
        ]

    async def recorded_after(self, sequence: int, limit: int) -> list[Notification]:
        if isinstance(self._store, StatusStore):
            self._store.polls += 1
        views = self._table(InMemoryViews.table)
        recorded = sorted(self._rows(), key=lambda r: r.sequence)
        return [self._shown(views, r) for r in recorded if r.sequence > sequence][:limit]


class FakeStatusUnitOfWork(FakeUnitOfWork):
    """status_svc's unit of work in memory; ``commits`` counts the committed ones."""

    repositories = {"views": InMemoryViews, "notifications": InMemoryNotifications}
    store_type = StatusStore
    views: InMemoryViews
    notifications: InMemoryNotifications
