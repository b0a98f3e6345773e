"""What the use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from order_svc.domain.model import Order
from ptkit.ports import UnitOfWork as BaseUnitOfWork


@dataclass(frozen=True)
class PageCursor:
    """Position after the last order of a page (orders are listed newest first)."""

    created_at: datetime
    order_id: str


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None: ...

    async def get(self, order_id: str) -> Order:
        """Raises OrderNotFound."""
        ...

    async def find_by_request(self, customer_id: str, request_id: str) -> Order | None: ...

    async def list(
        self, customer_id: str | None, limit: int, after: PageCursor | None
    ) -> list[Order]: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    orders: OrderRepository
