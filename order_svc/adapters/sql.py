"""SQLAlchemy adapter: the orders table, its repository and order_svc's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Index, String, UniqueConstraint, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from order_svc.domain.model import Order, OrderNotFound
from ptkit.mapping import AggregateMapper, Stored
from ptkit.migrations import service_metadata
from ptkit.paging import PageRequest
from ptkit.sql import MessagingTables, SqlUnitOfWork, TrackingRepository
from ptkit.sql_paging import keyset_page

metadata = service_metadata(Path(__file__).with_name("migrations"))
messaging = MessagingTables.add_to(metadata)

order_rows = AggregateMapper(
    Order,
    "orders",
    metadata,
    UniqueConstraint("customer_id", "request_id", name="uq_orders_customer_request"),
    Index("ix_orders_customer_created", "customer_id", "created_at", "order_id"),
    Index("ix_orders_created", "created_at", "order_id"),
    key="order_id",
    columns={
        "order_id": String(36),
        "customer_id": String(64),
        "customer_name": String(100),
        "class_name": String(100),
        # no request id is NULL, which the unique constraint lets repeat
        "request_id": Stored(
            String(64), nullable=True, write=lambda v: v or None, read=lambda v: v or ""
        ),
        "status": String(16),
        "cancel_reason": String(500),
        "cancellation_refused_reason": String(500),
    },
)
orders = order_rows.table
# built once, its parameters bound at execution: the hot path compiles nothing per call
_BY_REQUEST = select(orders).where(
    orders.c.customer_id == bindparam("customer_id"),
    orders.c.request_id == bindparam("request_id"),
)


class SqlOrderRepository(TrackingRepository):
    mapper = order_rows

    async def add(self, order: Order) -> None:
        await self._insert(order)

    async def get(self, order_id: str) -> Order:
        order = await self._find(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    async def find_by_request(self, customer_id: str, request_id: str) -> Order | None:
        row = (
            await self.connection.execute(
                _BY_REQUEST, {"customer_id": customer_id, "request_id": request_id}
            )
        ).first()
        return None if row is None else order_rows.load(row)

    async def list(self, customer_id: str | None, page: PageRequest) -> list[Order]:
        query = select(orders)
        if customer_id:
            query = query.where(orders.c.customer_id == customer_id)
        rows = await self.connection.execute(keyset_page(query, orders.c, page))
        return [order_rows.load(row) for row in rows]


class SqlOrderUnitOfWork(SqlUnitOfWork):
    orders: SqlOrderRepository

    def open_repositories(self, connection: AsyncConnection) -> None:
        self.orders = SqlOrderRepository(connection)

    def repositories(self) -> Iterable[TrackingRepository]:
        return (self.orders,)
