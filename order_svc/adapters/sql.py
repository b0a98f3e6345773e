"""SQLAlchemy adapter: the orders table, its repository and order_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    or_,
    select,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from order_svc.application.ports import PageCursor
from order_svc.domain.model import Order, OrderNotFound, OrderStatus
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository, as_utc

metadata = MetaData()
messaging = MessagingTables.add_to(metadata)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("customer_name", String(100), nullable=False),
    Column("class_name", String(100), nullable=False),
    Column("preferred_start", DateTime(timezone=True), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("cancel_reason", String(500), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("customer_id", "request_id", name="uq_orders_customer_request"),
    Index("ix_orders_customer_created", "customer_id", "created_at"),
    Index("ix_orders_created", "created_at", "order_id"),
)


def _to_order(row: Row) -> Order:
    return Order(
        order_id=row.order_id,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        class_name=row.class_name,
        preferred_start=as_utc(row.preferred_start),
        request_id=row.request_id or "",
        status=OrderStatus(row.status),
        cancel_reason=row.cancel_reason,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        version=row.version,
    )


def _state(order: Order) -> dict[str, object]:
    return {
        "status": order.status.value,
        "cancel_reason": order.cancel_reason,
        "updated_at": order.updated_at,
        "version": order.version,
    }


class SqlOrderRepository(TrackingRepository):
    table = orders
    key = "order_id"
    state = staticmethod(_state)

    async def add(self, order: Order) -> None:
        await self._insert(
            order,
            customer_id=order.customer_id,
            customer_name=order.customer_name,
            class_name=order.class_name,
            preferred_start=order.preferred_start,
            request_id=order.request_id or None,
            created_at=order.created_at,
        )

    async def get(self, order_id: str) -> Order:
        row = (
            await self.connection.execute(select(orders).where(orders.c.order_id == order_id))
        ).first()
        if row is None:
            raise OrderNotFound(order_id)
        order = _to_order(row)
        self._track(order)
        return order

    async def find_by_request(self, customer_id: str, request_id: str) -> Order | None:
        row = (
            await self.connection.execute(
                select(orders).where(
                    orders.c.customer_id == customer_id, orders.c.request_id == request_id
                )
            )
        ).first()
        return None if row is None else _to_order(row)

    async def list(
        self, customer_id: str | None, limit: int, after: PageCursor | None
    ) -> list[Order]:
        query = (
            select(orders)
            .order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
            .limit(limit)
        )
        if customer_id:
            query = query.where(orders.c.customer_id == customer_id)
        if after is not None:
            query = query.where(
                or_(
                    orders.c.created_at < after.created_at,
                    and_(
                        orders.c.created_at == after.created_at, orders.c.order_id < after.order_id
                    ),
                )
            )
        return [_to_order(row) for row in await self.connection.execute(query)]


class SqlOrderUnitOfWork(SqlUnitOfWork):
    orders: SqlOrderRepository

    def open_repositories(self, connection: AsyncConnection) -> None:
        self.orders = SqlOrderRepository(connection)

    def repositories(self) -> Iterable[TrackingRepository]:
        return (self.orders,)
