"""status_svc's views and notifications against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.auth import Caller, Role
from ptkit.domain import ConcurrencyConflict
from ptkit.paging import PageRequest, PageTokens
from ptkit.sql import AlreadyHandled, Causation
from status_svc.adapters import sql
from status_svc.application import handlers
from status_svc.application.bell import NotificationBell
from status_svc.application.ports import VIEW_PAGES, StatusFilter
from status_svc.application.watch import NotificationFeed, NotificationWatch
from status_svc.domain.events import ObservedEvent
from status_svc.domain.model import OrderStatus, OrderStatusNotFound, OrderStatusView
from status_svc.domain.notifications import Notification
from tests.helpers import database, eventually
from tests.status.flows import OrderFlow
from tests.status.flows import project as project_event

MANAGER = Caller("m-1", Role.MANAGER)

TOKENS = PageTokens.development()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with database(database_url, sql.metadata) as engine:
        yield engine


def unit_of_work(engine: AsyncEngine) -> sql.SqlStatusUnitOfWork:
    return sql.SqlStatusUnitOfWork(engine, sql.messaging, None)


async def project(engine: AsyncEngine, events: list[ObservedEvent]) -> None:
    for event in events:
        uow = unit_of_work(engine).handling(Causation("status_svc", event.event_id))
        await project_event(event, uow)


def folded(events: list[ObservedEvent]) -> OrderStatusView:
    view = OrderStatusView(order_id=events[0].order_id)
    for event in events:
        view.observe(event)
    return view


def same(one: OrderStatusView, other: OrderStatusView) -> bool:
    return replace(one, version=0) == replace(other, version=0)


async def count_notifications(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).select_from(sql.notifications)
        return (await connection.execute(query)).scalar_one()


async def test_a_view_reads_back_with_everything_it_learned(engine: AsyncEngine) -> None:
    flow = OrderFlow(class_name="Pilates 1:1").held("t-lee")
    await project(engine, flow.events)
    view = await handlers.get_order_status(
        handlers.GetOrderStatus(flow.order_id, MANAGER), unit_of_work(engine)
    )
    assert same(view, folded(flow.events))
    assert view.trainer_name == "Lee"
    assert view.start_time is not None and view.start_time.tzinfo is not None


async def test_reversed_events_give_the_in_order_view(engine: AsyncEngine) -> None:
    flow = OrderFlow().placed().assigned("t-kim").schedule_requested()
    flow.schedule_confirmed("t-kim").order_confirmed().order_cancelled()
    flow.assignment_cancelled("t-kim").schedule_cancelled("t-kim")
    await project(engine, list(reversed(flow.events)))
    view = await handlers.get_order_status(
        handlers.GetOrderStatus(flow.order_id, MANAGER), unit_of_work(engine)
    )
    assert same(view, folded(flow.events))
    assert view.order_status is OrderStatus.CANCELLED


async def test_an_order_without_events_has_no_status(engine: AsyncEngine) -> None:
    with pytest.raises(OrderStatusNotFound):
        await handlers.get_order_status(
            handlers.GetOrderStatus("5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e", MANAGER),
            unit_of_work(engine),
        )


async def test_a_redelivered_result_changes_nothing(engine: AsyncEngine) -> None:
    flow = OrderFlow().held()
    await project(engine, flow.events)
    with pytest.raises(AlreadyHandled):
        await project(engine, [flow.events[-2]])
    assert await count_notifications(engine) == 1


async def test_the_same_notification_is_stored_once(engine: AsyncEngine) -> None:
    flow = OrderFlow().held()
    await project(engine, flow.events)
    result = flow.events[-2]
    # another consumer name, so the processed-event mark does not stop it first
    uow = unit_of_work(engine).handling(Causation("another", result.event_id))
    await project_event(result, uow)
    assert await count_notifications(engine) == 1


async def test_notifications_take_the_class_name_learned_after_the_result(
    engine: AsyncEngine,
) -> None:
    flow = OrderFlow(class_name="Yoga").held()
    result = flow.events[-2]
    await project(engine, [result])
    [early] = (
        await handlers.list_notifications(
            handlers.ListNotifications("alice", MANAGER), unit_of_work(engine), TOKENS
        )
    ).items
    assert early.message == "Your class result is ready"
    await project(engine, [e for e in flow.events if e is not result])
    [later] = (
        await handlers.list_notifications(
            handlers.ListNotifications("alice", MANAGER), unit_of_work(engine), TOKENS
        )
    ).items
    assert later.notification_id == early.notification_id
    assert later.message == "Your class result for 'Yoga' is ready"


async def test_lists_filter_by_customer_trainer_and_status(engine: AsyncEngine) -> None:
    kim = OrderFlow(customer_id="alice").placed().assigned("t-kim")
    lee = OrderFlow(customer_id="alice").placed().assigned("t-lee").order_cancelled()
    bob = OrderFlow(customer_id="bob").held("t-kim")
    for flow in (kim, lee, bob):
        await project(engine, flow.events)

    async def ids(size: int = 100, **wanted: object) -> list[str]:
        uow = unit_of_work(engine)
        async with uow:
            views = await uow.views.list(
                StatusFilter(**wanted),  # type: ignore[arg-type]
                PageRequest(VIEW_PAGES, size),
            )
        return [view.order_id for view in views]

    assert await ids() == [bob.order_id, lee.order_id, kim.order_id]  # last updated first
    assert await ids(customer_id="alice") == [lee.order_id, kim.order_id]
    assert await ids(trainer_id="t-kim") == [bob.order_id, kim.order_id]
    assert await ids(order_status=OrderStatus.CANCELLED) == [lee.order_id]
    assert await ids(customer_id="bob", order_status=OrderStatus.PLACED) == []
    assert await ids(size=1) == [bob.order_id, lee.order_id]  # a page and one more
    [result] = (
        await handlers.list_class_results(
            handlers.ListClassResults("bob", MANAGER), unit_of_work(engine), TOKENS
        )
    ).items
    assert (result.order_id, result.trainer_name) == (bob.order_id, "Kim")
    assert (
        await handlers.list_class_results(
            handlers.ListClassResults("alice", MANAGER), unit_of_work(engine), TOKENS
        )
    ).items == []


async def test_a_view_created_concurrently_conflicts(engine: AsyncEngine) -> None:
    event = OrderFlow().placed().events[0]
    uow = unit_of_work(engine)
    async with uow:
        assert await uow.views.find(event.order_id) is None
        # another replica creates the view after we looked
        await uow.connection.execute(
            insert(sql.order_status_views).values(
                order_id=event.order_id, stamps={}, trainer_names={}, version=1
            )
        )
        with pytest.raises(ConcurrencyConflict):
            await uow.views.add(OrderStatusView(order_id=event.order_id))


async def test_a_view_changed_concurrently_conflicts(engine: AsyncEngine) -> None:
    flow = OrderFlow().placed().order_cancelled()
    await project(engine, flow.events[:1])
    uow = unit_of_work(engine)
    async with uow:
        view = await uow.views.get(flow.order_id)
        await uow.connection.execute(
            update(sql.order_status_views)
            .where(sql.order_status_views.c.order_id == flow.order_id)
            .values(version=sql.order_status_views.c.version + 1)
        )
        view.observe(flow.events[1])
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()


async def test_a_watch_sees_results_projected_after_it_started(engine: AsyncEngine) -> None:
    before = OrderFlow(class_name="Before").held()
    await project(engine, before.events)
    bell, closing = NotificationBell(), asyncio.Event()
    watch = NotificationWatch(
        "alice",
        unit_of_work(engine),
        NotificationFeed(lambda: unit_of_work(engine), bell, 0.05),
        closing,
    )
    await watch.start()
    stream = watch.notifications()
    after = OrderFlow(customer_id="alice", class_name="After").held()
    await project(engine, OrderFlow(customer_id="bob").held().events + after.events)
    notification = await asyncio.wait_for(anext(stream), 5)
    assert notification.order_id == after.order_id
    assert notification.message == "Your class result for 'After' is ready"
    closing.set()
    assert [n async for n in stream] == []


async def test_a_later_notification_waits_for_an_open_one_so_sequences_show_in_order(
    postgres_url: str,
) -> None:
    """A resume point is exact only if no notification with a smaller sequence commits
    after a larger one: on PostgreSQL the second writer takes its number after the first
    committed (the advisory lock). SQLite's engine has one connection and begins every
    transaction IMMEDIATE, so its writers never overlap."""
    async with database(postgres_url, sql.metadata) as engine:
        await notifications_commit_in_sequence_order(engine)


async def notifications_commit_in_sequence_order(engine: AsyncEngine) -> None:
    first, second = unit_of_work(engine), unit_of_work(engine)
    async with first:
        await first.notifications.add(notify(1))

        async def record_second() -> None:
            async with second:
                await second.notifications.add(notify(2))
                await second.commit()

        later = asyncio.create_task(record_second())
        await waiting_for_a_lock(engine)
        assert not later.done()
        await first.commit()
    await asyncio.wait_for(later, 10)
    async with unit_of_work(engine) as uow:
        shown = await uow.notifications.since("alice", 0)
    assert [n.notification_id for n in shown] == ["n-1", "n-2"]
    assert shown[0].sequence < shown[1].sequence


def notify(number: int) -> Notification:
    return Notification(
        notification_id=f"n-{number}", customer_id="alice", order_id=f"o-{number}", created_at=None
    )


async def waiting_for_a_lock(engine: AsyncEngine) -> None:
    """Until the task's transaction waits for the first one's advisory lock."""

    async def blocked() -> bool:
        async with engine.connect() as connection:
            query = text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            return (await connection.execute(query)).scalar_one() > 0

    await eventually(blocked, timeout=10, what="the second writer waiting for the lock")


async def test_the_read_model_keeps_no_outbox(database_url: str) -> None:
    """status_svc publishes nothing: its database holds views, notifications and
    processed-event marks, and no outbox for a relay to poll."""
    async with database(database_url, sql.metadata) as engine:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert "outbox" not in names
    assert {"order_status_views", "notifications", "processed_events"} <= set(names)
