"""SQLAlchemy adapter: the views and notifications tables, their repositories and
status_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    case,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from ptkit.mapping import AggregateMapper, as_utc
from ptkit.migrations import service_metadata
from ptkit.paging import PageRequest
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository
from ptkit.sql_paging import keyset_page
from status_svc.application.ports import StatusFilter
from status_svc.domain.model import (
    AssignmentStatus,
    OrderStatus,
    OrderStatusNotFound,
    OrderStatusView,
    ScheduleStatus,
)
from status_svc.domain.notifications import Notification, NotificationKind

metadata = service_metadata(Path(__file__).with_name("migrations"))
messaging = MessagingTables.add_to(metadata, outbox=False)

# ``stamps`` and ``trainer_names`` (JSON) are the bookkeeping that keeps the view
# independent of arrival order (see the domain model).
view_rows = AggregateMapper(
    OrderStatusView,
    "order_status_views",
    metadata,
    Index("ix_order_status_views_customer", "customer_id", "updated_at"),
    Index("ix_order_status_views_trainer", "trainer_id", "updated_at"),
    Index("ix_order_status_views_updated", "updated_at"),
    Index("ix_order_status_views_updated_order", "updated_at", "order_id"),
    Index("ix_order_status_views_customer_result", "customer_id", "result_recorded_at", "order_id"),
    key="order_id",
    columns={
        "order_id": String(36),
        "customer_id": String(64),
        "customer_name": String(100),
        "class_name": String(100),
        "trainer_id": String(64),
        "class_result": Text(),
        "order_status": String(16),
        "reported_assignment_status": String(24),
        "reported_schedule_status": String(24),
        "cancellation_refused_reason": String(500),
    },
)
order_status_views = view_rows.table


def assignment_status() -> ColumnElement[str | None]:
    """:attr:`OrderStatusView.assignment_status` in SQL, case for case, so that a list
    can filter on it (tests/status/integration/test_repository_contract.py holds the two
    to the same answer for every combination of statuses)."""
    views = order_status_views.c
    booked = [s.value for s in ScheduleStatus if s.booked]
    return case(
        (
            views.reported_assignment_status == AssignmentStatus.CANCELLED.value,
            views.reported_assignment_status,
        ),
        (views.reported_schedule_status.in_(booked), AssignmentStatus.ORDER_CONFIRMED.value),
        (views.reported_assignment_status.is_not(None), views.reported_assignment_status),
        (views.order_status == OrderStatus.CANCELLED.value, AssignmentStatus.CANCELLED.value),
        (views.order_status.is_not(None), AssignmentStatus.AWAITING_TRAINER.value),
        else_=None,
    )


notifications = Table(
    "notifications",
    metadata,
    # the order in which notifications were recorded: what WatchNotifications follows
    Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("notification_id", String(36), nullable=False, unique=True),
    Column("customer_id", String(64), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=True),
    # what it tells: a NotificationKind value
    Column("kind", String(32), nullable=False, server_default="CLASS_RESULT_READY"),
    Index("ix_notifications_customer_seq", "customer_id", "seq"),
    Index("ix_notifications_customer_created", "customer_id", "created_at", "notification_id"),
)


class SqlOrderStatusViews(TrackingRepository):
    mapper = view_rows

    async def find(self, order_id: str) -> OrderStatusView | None:
        return await self._find(order_id)

    async def get(self, order_id: str) -> OrderStatusView:
        view = await self.find(order_id)
        if view is None:
            raise OrderStatusNotFound(order_id)
        return view

    async def add(self, view: OrderStatusView) -> None:
        await self._insert(view)

    async def list(self, wanted: StatusFilter, page: PageRequest) -> list[OrderStatusView]:
        views = order_status_views.c
        query = select(order_status_views)
        if wanted.customer_id is not None:
            query = query.where(views.customer_id == wanted.customer_id)
        if wanted.trainer_id is not None:
            query = query.where(views.trainer_id == wanted.trainer_id)
        if wanted.order_status is not None:
            query = query.where(views.order_status == wanted.order_status.value)
        if wanted.assignment_status is not None:
            query = query.where(assignment_status() == wanted.assignment_status.value)
        rows = await self.connection.execute(keyset_page(query, views, page))
        return [view_rows.load(row) for row in rows]

    async def with_class_results(
        self, customer_id: str, page: PageRequest
    ) -> list[OrderStatusView]:
        views = order_status_views.c
        query = select(order_status_views).where(
            views.customer_id == customer_id, views.class_result != ""
        )
        rows = await self.connection.execute(keyset_page(query, views, page))
        return [view_rows.load(row) for row in rows]


def _to_notification(row: Row) -> Notification:
    return Notification(
        notification_id=row.notification_id,
        customer_id=row.customer_id,
        order_id=row.order_id,
        created_at=as_utc(row.created_at),
        class_name=row.class_name or "",
        kind=NotificationKind(row.kind),
        sequence=row.seq,
    )


def _with_class_name() -> Select:
    """Notifications joined with their order's view for the class name (known later,
    sometimes, than the result)."""
    return select(
        notifications.c.seq,
        notifications.c.notification_id,
        notifications.c.customer_id,
        notifications.c.order_id,
        notifications.c.created_at,
        notifications.c.kind,
        order_status_views.c.class_name,
    ).select_from(
        notifications.outerjoin(
            order_status_views, notifications.c.order_id == order_status_views.c.order_id
        )
    )


# Any 64-bit key of status_svc's own: the lock that orders notification inserts.
NOTIFICATIONS_LOCK = 0x7074_6E6F_7469_6673  # "ptnotifs"


class SqlNotifications:
    """Notifications become visible in sequence order, so a watcher that has seen
    sequence N never later finds a committed notification below N.

    A sequence number is taken at insert and shows at commit. On PostgreSQL every
    transaction that records a notification therefore first takes a transaction-scoped
    advisory lock (released at commit or rollback): the next one can only take its
    number after this one ended. On SQLite the kit's engine already serializes writers
    (one connection, every transaction begins IMMEDIATE)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, notification: Notification) -> None:
        dialect = {"postgresql": postgresql, "sqlite": sqlite}[self.connection.dialect.name]
        if dialect is postgresql:
            await self.connection.execute(select(func.pg_advisory_xact_lock(NOTIFICATIONS_LOCK)))
        await self.connection.execute(
            dialect.insert(notifications)
            .values(
                notification_id=notification.notification_id,
                customer_id=notification.customer_id,
                order_id=notification.order_id,
                created_at=notification.created_at,
                kind=notification.kind.value,
            )
            .on_conflict_do_nothing(index_elements=["notification_id"])
        )

    async def list(self, customer_id: str, page: PageRequest) -> list[Notification]:
        query = _with_class_name().where(notifications.c.customer_id == customer_id)
        rows = await self.connection.execute(keyset_page(query, notifications.c, page))
        return [_to_notification(row) for row in rows]

    async def last_sequence(self) -> int:
        return (
            await self.connection.execute(select(func.coalesce(func.max(notifications.c.seq), 0)))
        ).scalar_one()

    async def since(self, customer_id: str, sequence: int) -> list[Notification]:
        query = (
            _with_class_name()
            .where(notifications.c.customer_id == customer_id, notifications.c.seq > sequence)
            .order_by(notifications.c.seq)
        )
        return [_to_notification(row) for row in await self.connection.execute(query)]

    async def recorded_after(self, sequence: int, limit: int) -> list[Notification]:
        query = (
            _with_class_name()
            .where(notifications.c.seq > sequence)
            .order_by(notifications.c.seq)
            .limit(limit)
        )
        return [_to_notification(row) for row in await self.connection.execute(query)]


class SqlStatusUnitOfWork(SqlUnitOfWork):
    views: SqlOrderStatusViews
    notifications: SqlNotifications

    def open_repositories(self, connection: AsyncConnection) -> None:
        self.views = SqlOrderStatusViews(connection)
        self.notifications = SqlNotifications(connection)

    def repositories(self) -> Iterable[TrackingRepository]:
        return (self.views,)
