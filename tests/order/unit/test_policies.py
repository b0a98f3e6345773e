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


async def test_a_refused_cancellation_completes_the_cancelled_order_once() -> None:
    uow = FakeUnitOfWork()
    await handlers.place_order(place(), uow, new_id=lambda: "o-1")
    await handlers.confirm_order_on_schedule_confirmed(handlers.ScheduleConfirmed("o-1"), uow)
    await handlers.cancel_order(handlers.CancelOrder("o-1", "moved away", MANAGER), uow)
    # the result overtook the refusal: a cancelled order is not completed by it alone
    await handlers.complete_order_on_class_result_registered(
        handlers.ClassResultRegistered("o-1"), uow
    )
    assert uow.orders.rows["o-1"].status is OrderStatus.CANCELLED
    refusal = handlers.CancellationRefused("o-1", "class already held")
    await handlers.complete_order_on_cancellation_refused(refusal, uow)
    await handlers.complete_order_on_cancellation_refused(refusal, uow)
    order = uow.orders.rows["o-1"]
    assert (order.status, order.cancellation_refused_reason) == (
        OrderStatus.COMPLETED,
        "class already held",
    )
    assert [type(e).__name__ for e in uow.published][-1:] == ["OrderCompleted"]
    assert [type(e).__name__ for e in uow.published].count("OrderCompleted") == 1
