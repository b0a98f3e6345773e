"""What the use cases need from the outside world."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from order_svc.domain.model import Order
from ptkit.paging import Keyset, PageRequest, SortKey
from ptkit.ports import UnitOfWork as BaseUnitOfWork

ORDER_PAGES = Keyset(
    "orders",
    SortKey("created_at", datetime, descending=True),
    SortKey("order_id", descending=True),
)
"""Orders are listed newest first."""


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None: ...

    async def get(self, order_id: str) -> Order:
        """Raises OrderNotFound."""
        ...

    async def find_by_request(self, customer_id: str, request_id: str) -> Order | None: ...

    async def list(self, customer_id: str | None, page: PageRequest) -> list[Order]:
        """The page's orders (at most ``page.limit``) in ORDER_PAGES order, optionally
        only one customer's."""
        ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    orders: OrderRepository
