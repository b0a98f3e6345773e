"""order_svc's repository in memory, over the kit's one fake unit of work.

The contract suite (tests/order/integration/test_repository_contract.py) runs the same
tests against it and the SQL repository on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from order_svc.domain.model import Order, OrderNotFound
from ptkit.paging import PageRequest, page_in_memory
from ptkit.testing import FakeUnitOfWork, InMemoryRepository


class InMemoryOrders(InMemoryRepository[Order]):
    table = "orders"
    key = "order_id"
    unique = (("customer_id", "request_id"),)

    def _unique_values(self, item: Order, columns: tuple[str, ...]) -> tuple[Any, ...] | None:
        # no request id is stored as NULL, which the unique constraint lets repeat
        return None if not item.request_id else super()._unique_values(item, columns)

    async def add(self, order: Order) -> None:
        self._insert(order)

    async def get(self, order_id: str) -> Order:
        order = self._find(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    async def find_by_request(self, customer_id: str, request_id: str) -> Order | None:
        return next(
            (
                o
                for o in self._rows()
                if o.customer_id == customer_id and o.request_id == request_id
            ),
            None,
        )

    async def list(self, customer_id: str | None, page: PageRequest) -> list[Order]:
        mine = [o for o in self._rows() if not customer_id or o.customer_id == customer_id]
        return page_in_memory(mine, page)


class FakeOrderUnitOfWork(FakeUnitOfWork):
    """order_svc's unit of work in memory; ``published`` and ``commits`` say what the
    committed transactions wrote."""

    repositories = {"orders": InMemoryOrders}
    orders: InMemoryOrders
