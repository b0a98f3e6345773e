"""order_svc's reactions to trainer_svc's events, against the in-memory unit of work."""

from __future__ import annotations

from order_svc.application import handlers
from order_svc.domain.model import OrderStatus
from ptkit.auth import Caller, Role
from tests.order.fakes import FakeOrderUnitOfWork as FakeUnitOfWork

MANAGER = Caller("m-1", Role.MANAGER)


def place() -> handlers.PlaceOrder:
    return handlers.PlaceOrder("alice", "Alice", "Pilates", None, "", MANAGER)


async def test_policies_confirm_then_complete() -> None:
    uow = FakeUnitOfWork()
    order = await handlers.place_order(place(), uow, new_id=lambda: "o-1")
    await handlers.confirm_order_on_schedule_confirmed(handlers.ScheduleConfirmed("o-1"), uow)
    assert uow.orders.rows[order.order_id].status is OrderStatus.CONFIRMED
    await handlers.complete_order_on_class_result_registered(
        handlers.ClassResultRegistered("o-1"), uow
    )
    assert uow.orders.rows[order.order_id].status is OrderStatus.COMPLETED
