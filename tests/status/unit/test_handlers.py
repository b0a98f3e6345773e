"""status_svc use cases against an in-memory unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from ptkit.auth import Caller, Role
from ptkit.paging import PageTokens
from status_svc.application import handlers
from status_svc.application.bell import NotificationBell
from status_svc.application.watch import NotificationFeed, NotificationWatch
from status_svc.domain.model import OrderStatus, OrderStatusNotFound
from status_svc.domain.notifications import Notification, NotificationKind
from tests.helpers import eventually
from tests.status.fakes import FakeStatusUnitOfWork as FakeUnitOfWork
from tests.status.flows import OrderFlow
from tests.status.flows import project as project_event

MANAGER = Caller("m-1", Role.MANAGER)

TOKENS = PageTokens.development()


async def project(
    uow: FakeUnitOfWork, flow: OrderFlow, bell: NotificationBell | None = None
) -> None:
    for event in flow.events:
        await project_event(event, uow, bell)


def notification(number: int, customer_id: str = "alice") -> Notification:
    return Notification(
        notification_id=f"n-{number}",
        customer_id=customer_id,
        order_id=f"o-{number}",
        created_at=datetime(2026, 11, 26, 9, number, tzinfo=UTC),
    )


async def test_the_first_event_of_an_order_opens_its_view() -> None:
    uow = FakeUnitOfWork()
    flow = OrderFlow().placed()
    await project(uow, flow)
    view = await handlers.get_order_status(handlers.GetOrderStatus(flow.order_id, MANAGER), uow)
    assert view.order_status is OrderStatus.PLACED
    assert uow.commits == 1


async def test_an_order_without_events_has_no_status() -> None:
    with pytest.raises(OrderStatusNotFound):
        await handlers.get_order_status(
            handlers.GetOrderStatus("o-unknown", MANAGER), FakeUnitOfWork()
        )


async def test_a_class_result_notifies_the_customer_once_and_rings_the_bell() -> None:
    uow, bell = FakeUnitOfWork(), NotificationBell()
    flow = OrderFlow(class_name="Pilates 1:1").held()
    with bell.listen() as rung:
        await project(uow, flow, bell)
        assert rung.is_set()
    await project_event(flow.events[-2], uow, bell)  # a redelivered result
    [sent] = (
        await handlers.list_notifications(handlers.ListNotifications("alice", MANAGER), uow, TOKENS)
    ).items
    assert sent.order_id == flow.order_id
    assert sent.message == "Your class result for 'Pilates 1:1' is ready"


async def test_a_refused_cancellation_is_shown_and_told_to_the_customer_once() -> None:
    uow, bell = FakeUnitOfWork(), NotificationBell()
    flow = OrderFlow(class_name="Pilates 1:1").placed().assigned("t-kim").schedule_requested()
    flow.schedule_confirmed("t-kim").order_confirmed().order_cancelled().result("t-kim")
    flow.cancellation_refused("class already held").order_completed()
    await project(uow, flow)
    with bell.listen() as rung:
        await project_event(flow.events[-2], uow, bell)  # a redelivered refusal
        assert rung.is_set()
    view = await handlers.get_order_status(handlers.GetOrderStatus(flow.order_id, MANAGER), uow)
    assert (view.order_status, view.class_result, view.cancellation_refused_reason) == (
        OrderStatus.COMPLETED,
        "Great form",
        "class already held",
    )
    sent = (
        await handlers.list_notifications(handlers.ListNotifications("alice", MANAGER), uow, TOKENS)
    ).items
    assert [(n.kind, n.order_id) for n in sent] == [
        (NotificationKind.CLASS_RESULT_READY, flow.order_id),
        (NotificationKind.CANCELLATION_REFUSED, flow.order_id),
    ]
    assert sent[1].message == (
        "Your cancellation of 'Pilates 1:1' could not be applied: the class had already "
        "been held, so the order is completed and its result is available"
    )


async def test_other_events_do_not_ring_the_bell() -> None:
    uow, bell = FakeUnitOfWork(), NotificationBell()
    with bell.listen() as rung:
        await project(uow, OrderFlow().placed().assigned("t-kim"), bell)
        assert not rung.is_set()


async def test_class_results_list_only_the_customers_held_classes() -> None:
    uow = FakeUnitOfWork()
    held = OrderFlow(customer_id="alice", class_name="Yoga").held("t-lee")
    await project(uow, held)
    await project(uow, OrderFlow(customer_id="alice").placed().assigned("t-kim"))
    await project(uow, OrderFlow(customer_id="bob").held())
    [result] = (
        await handlers.list_class_results(handlers.ListClassResults("alice", MANAGER), uow, TOKENS)
    ).items
    assert result.order_id == held.order_id
    assert (result.class_name, result.trainer_name) == ("Yoga", "Lee")


async def test_list_order_statuses_filters_by_customer_trainer_and_status() -> None:
    uow = FakeUnitOfWork()
    kim = OrderFlow(customer_id="alice").placed().assigned("t-kim")
    lee = OrderFlow(customer_id="alice").placed().assigned("t-lee").order_cancelled()
    bob = OrderFlow(customer_id="bob").placed()
    for flow in (kim, lee, bob):
        await project(uow, flow)

    async def ids(**wanted: object) -> set[str]:
        query = handlers.ListOrderStatuses(MANAGER, **wanted)  # type: ignore[arg-type]
        views = (await handlers.list_order_statuses(query, uow, TOKENS)).items
        return {view.order_id for view in views}

    assert await ids(customer_id="alice") == {kim.order_id, lee.order_id}
    assert await ids(trainer_id="t-kim") == {kim.order_id}
    assert await ids(order_status=OrderStatus.CANCELLED) == {lee.order_id}
    assert await ids(customer_id="alice", order_status=OrderStatus.PLACED) == {kim.order_id}
    assert await ids() == {kim.order_id, lee.order_id, bob.order_id}


async def polled(uow: FakeUnitOfWork) -> None:
    """Until the watch has looked once and is pausing."""

    async def looked() -> bool:
        return uow.notifications.polls > 0

    await eventually(looked, timeout=2, what="the watch's first poll")


async def first(stream: AsyncIterator[Notification]) -> Notification:
    return await asyncio.wait_for(anext(stream), 2.0)


async def test_watch_streams_only_notifications_recorded_after_it_started() -> None:
    uow, bell, closing = FakeUnitOfWork(), NotificationBell(), asyncio.Event()
    uow.notifications.record(notification(1))
    watch = NotificationWatch("alice", uow, NotificationFeed(lambda: uow, bell, 0.01), closing)
    await watch.start()
    stream = watch.notifications()
    uow.notifications.record(notification(2, customer_id="bob"))
    uow.notifications.record(notification(3))
    assert (await first(stream)).notification_id == "n-3"
    await stream.aclose()


async def test_the_bell_wakes_a_watch_without_waiting_for_the_poll() -> None:
    uow, bell, closing = FakeUnitOfWork(), NotificationBell(), asyncio.Event()
    watch = NotificationWatch("alice", uow, NotificationFeed(lambda: uow, bell, 60), closing)
    stream = watch.notifications()
    waiting = asyncio.ensure_future(anext(stream))
    await polled(uow)
    uow.notifications.record(notification(1))
    bell.ring()
    assert (await asyncio.wait_for(waiting, 2)).notification_id == "n-1"
    await stream.aclose()


async def test_a_notification_of_another_replica_arrives_by_polling() -> None:
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    watch = NotificationWatch(
        "alice", uow, NotificationFeed(lambda: uow, NotificationBell(), 0.01), closing
    )
    await watch.start()
    stream = watch.notifications()
    uow.notifications.record(notification(1))  # nobody rings this replica's bell
    assert (await first(stream)).notification_id == "n-1"
    await stream.aclose()


async def received(stream: AsyncIterator[Notification], count: int) -> list[str]:
    return [(await first(stream)).notification_id for _ in range(count)]


async def test_a_watch_with_a_resume_point_replays_what_was_missed_then_follows() -> None:
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    for number in (1, 2, 3):
        uow.notifications.record(notification(number))
    uow.notifications.record(notification(4, customer_id="bob"))
    async with uow:
        seen = await uow.notifications.since("alice", 0)
    watch = NotificationWatch(
        "alice",
        uow,
        NotificationFeed(lambda: uow, NotificationBell(), 0.01),
        closing,
        after=seen[0].sequence,
    )
    stream = watch.notifications()
    assert await received(stream, 2) == ["n-2", "n-3"]
    uow.notifications.record(notification(5))
    assert await received(stream, 1) == ["n-5"]
    await stream.aclose()


async def test_a_resume_point_of_zero_replays_every_notification_of_the_customer() -> None:
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    uow.notifications.record(notification(1))
    uow.notifications.record(notification(2))
    watch = NotificationWatch(
        "alice", uow, NotificationFeed(lambda: uow, NotificationBell(), 0.01), closing, after=0
    )
    stream = watch.notifications()
    assert await received(stream, 2) == ["n-1", "n-2"]
    await stream.aclose()


async def test_streamed_notifications_carry_their_increasing_sequence() -> None:
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    watch = NotificationWatch(
        "alice", uow, NotificationFeed(lambda: uow, NotificationBell(), 0.01), closing, after=0
    )
    stream = watch.notifications()
    uow.notifications.record(notification(1))
    uow.notifications.record(notification(2))
    sequences = [(await first(stream)).sequence for _ in range(2)]
    assert 0 < sequences[0] < sequences[1]
    await stream.aclose()


async def test_a_reconnect_at_the_last_received_sequence_misses_nothing_and_repeats_nothing() -> (
    None
):
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    first_watch = NotificationWatch(
        "alice", uow, NotificationFeed(lambda: uow, NotificationBell(), 0.01), closing, after=0
    )
    stream = first_watch.notifications()
    uow.notifications.record(notification(1))
    last = await first(stream)
    await stream.aclose()  # the watcher is gone; meanwhile two more are recorded
    uow.notifications.record(notification(2))
    uow.notifications.record(notification(3))
    again = NotificationWatch(
        "alice",
        uow,
        NotificationFeed(lambda: uow, NotificationBell(), 0.01),
        closing,
        after=last.sequence,
    )
    stream = again.notifications()
    assert await received(stream, 2) == ["n-2", "n-3"]
    await stream.aclose()


async def test_closing_ends_the_watch() -> None:
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    watch = NotificationWatch(
        "alice", uow, NotificationFeed(lambda: uow, NotificationBell(), 60), closing
    )
    stream = watch.notifications()
    waiting = asyncio.ensure_future(anext(stream))
    await polled(uow)
    closing.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 2)
