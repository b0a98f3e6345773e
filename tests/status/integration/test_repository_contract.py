"""The status repository contract: the same tests against the in-memory fakes
(tests/status/fakes.py) and the SQL repositories on SQLite and PostgreSQL, so the
fake the unit tests use cannot drift from what users get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from itertools import count, product
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ptkit.domain import ConcurrencyConflict
from ptkit.paging import PageRequest
from ptkit.sql import AlreadyHandled, Causation
from status_svc.adapters import sql
from status_svc.application.ports import (
    CLASS_RESULT_PAGES,
    NOTIFICATION_PAGES,
    VIEW_PAGES,
    StatusFilter,
)
from status_svc.domain.model import (
    AssignmentStatus,
    OrderStatus,
    OrderStatusNotFound,
    OrderStatusView,
    ScheduleStatus,
)
from status_svc.domain.notifications import Notification, NotificationKind
from tests.repository_contract import Backend, open_backend
from tests.status.fakes import FakeStatusUnitOfWork
from tests.status.flows import T0, OrderFlow

EVENT_ID = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"

EVERY_VIEW = PageRequest(VIEW_PAGES, 100)
NOTES = PageRequest(NOTIFICATION_PAGES, 100)


@pytest.fixture
async def backend(store_url: str) -> AsyncIterator[Backend]:
    def new_uow(engine: AsyncEngine) -> Any:
        return sql.SqlStatusUnitOfWork(engine, sql.messaging, None)

    async with open_backend(
        store_url, FakeStatusUnitOfWork, new_uow, sql.metadata, sql.messaging
    ) as opened:
        yield opened


def flow(order_id: str, customer: str = "alice", at: int = 0) -> OrderFlow:
    """An order whose events happen one second apart from ``T0 + at`` seconds."""
    return OrderFlow(order_id, customer, clock=count(at))


def folded(order: OrderFlow) -> OrderStatusView:
    view = OrderStatusView(order_id=order.order_id)
    for event in order.events:
        view.observe(event)
    return view


def notification(n: int, customer: str = "alice", minute: int | None = None) -> Notification:
    return Notification(
        notification_id=f"n-{n}",
        customer_id=customer,
        order_id=f"o-{n}",
        created_at=T0 + timedelta(minutes=n if minute is None else minute),
    )


async def stored(backend: Backend, *views: OrderStatusView) -> None:
    async with backend.uow() as uow:
        for view in views:
            await uow.views.add(view)
        await uow.commit()


async def recorded(backend: Backend, *notifications: Notification) -> None:
    async with backend.uow() as uow:
        for each in notifications:
            await uow.notifications.add(each)
        await uow.commit()


async def listed(backend: Backend, wanted: StatusFilter) -> list[str]:
    async with backend.uow() as uow:
        return [view.order_id for view in await uow.views.list(wanted, EVERY_VIEW)]


# --- views ---------------------------------------------------------------------------


def every_combination() -> list[OrderStatusView]:
    """A view for each combination of reported statuses (none reported included)."""
    combinations = product([None, *OrderStatus], [None, *AssignmentStatus], [None, *ScheduleStatus])
    return [
        OrderStatusView(
            order_id=f"o-{n:03}",
            order_status=order,
            reported_assignment_status=assignment,
            reported_schedule_status=schedule,
            updated_at=T0 + timedelta(seconds=n),
        )
        for n, (order, assignment, schedule) in enumerate(combinations)
    ]


async def test_the_assignment_status_filter_agrees_with_the_views_own_reading(
    backend: Backend,
) -> None:
    views = every_combination()
    await stored(backend, *views)
    for status in AssignmentStatus:
        expected = [v.order_id for v in reversed(views) if v.assignment_status is status]
        assert expected, status
        every = PageRequest(VIEW_PAGES, len(views))
        async with backend.uow() as uow:
            found = await uow.views.list(StatusFilter(assignment_status=status), every)
        assert [view.order_id for view in found] == expected, status


async def test_an_added_view_reads_back_equal(backend: Backend) -> None:
    held = folded(flow("o-1").held("t-kim"))
    await stored(backend, held)
    async with backend.uow() as uow:
        assert await uow.views.get("o-1") == held
        assert await uow.views.find("o-1") == held


async def test_a_refused_cancellation_reads_back_with_its_view(backend: Backend) -> None:
    order = flow("o-1").placed().assigned("t-kim").schedule_confirmed("t-kim").order_confirmed()
    order.order_cancelled().result("t-kim").cancellation_refused().order_completed()
    await stored(backend, folded(order))
    async with backend.uow() as uow:
        view = await uow.views.get("o-1")
    assert (view.order_status, view.cancellation_refused_reason) == (
        OrderStatus.COMPLETED,
        "class already held",
    )


async def test_an_unknown_view_is_not_found(backend: Backend) -> None:
    async with backend.uow() as uow:
        assert await uow.views.find("o-unknown") is None
        with pytest.raises(OrderStatusNotFound):
            await uow.views.get("o-unknown")


async def test_a_second_view_of_the_same_order_is_a_conflict(backend: Backend) -> None:
    await stored(backend, folded(flow("o-1").placed()))
    with pytest.raises(ConcurrencyConflict):
        async with backend.uow() as uow:
            await uow.views.add(folded(flow("o-1", "bob").placed()))
            await uow.commit()
    async with backend.uow() as uow:
        assert (await uow.views.get("o-1")).customer_id == "alice"


async def test_list_is_most_recently_updated_first_ties_by_order_id(backend: Backend) -> None:
    await stored(
        backend,
        folded(flow("o-1", at=1).placed()),
        folded(flow("o-4", at=3).placed()),
        folded(flow("o-3", at=2).placed()),
        folded(flow("o-2", at=3).placed()),  # updated when o-4 was
    )
    assert await listed(backend, StatusFilter()) == ["o-2", "o-4", "o-3", "o-1"]


async def test_list_reads_a_page_and_one_more_after_the_position(backend: Backend) -> None:
    await stored(backend, *(folded(flow(f"o-{n}", at=n).placed()) for n in range(5)))
    async with backend.uow() as uow:
        first = await uow.views.list(StatusFilter(), PageRequest(VIEW_PAGES, 2))
        after = VIEW_PAGES.position_of(first[1])
        rest = await uow.views.list(StatusFilter(), PageRequest(VIEW_PAGES, 2, after))
    assert [v.order_id for v in first] == ["o-4", "o-3", "o-2"]
    assert [v.order_id for v in rest] == ["o-2", "o-1", "o-0"]


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (StatusFilter(customer_id="alice"), ["o-4", "o-3", "o-1"]),
        (StatusFilter(customer_id="carol"), []),
        (StatusFilter(trainer_id="t-kim"), ["o-4", "o-2"]),
        (StatusFilter(order_status=OrderStatus.PLACED), ["o-2", "o-1"]),
        (StatusFilter(order_status=OrderStatus.CANCELLED), ["o-3"]),
        (StatusFilter(order_status=OrderStatus.COMPLETED), ["o-4"]),
        (StatusFilter(customer_id="alice", trainer_id="t-kim"), ["o-4"]),
        (StatusFilter(assignment_status=AssignmentStatus.AWAITING_TRAINER), ["o-1"]),
        (
            StatusFilter(
                order_status=OrderStatus.PLACED, assignment_status=AssignmentStatus.TRAINER_ASSIGNED
            ),
            ["o-2"],
        ),
        (StatusFilter(assignment_status=AssignmentStatus.ORDER_CONFIRMED), ["o-4"]),
    ],
    ids=[
        "customer",
        "unknown-customer",
        "trainer",
        "placed",
        "cancelled",
        "completed",
        "both",
        "awaiting-trainer",
        "trainer-assigned",
        "order-confirmed",
    ],
)
async def test_list_keeps_the_views_the_filter_matches(
    backend: Backend, wanted: StatusFilter, expected: list[str]
) -> None:
    await stored(
        backend,
        folded(flow("o-1", "alice", at=0).placed()),
        folded(flow("o-2", "bob", at=10).placed().assigned("t-kim")),
        folded(flow("o-3", "alice", at=20).placed().assigned("t-lee").order_cancelled()),
        folded(flow("o-4", "alice", at=30).held("t-kim")),
    )
    assert await listed(backend, wanted) == expected


async def test_with_class_results_holds_the_customers_results_oldest_first(
    backend: Backend,
) -> None:
    await stored(
        backend,
        folded(flow("o-1", "alice", at=40).held()),  # the latest result
        folded(flow("o-2", "alice", at=10).held()),
        folded(flow("o-3", "bob", at=0).held()),  # someone else's
        folded(flow("o-4", "alice", at=0).placed().assigned("t-kim")),  # no result yet
        folded(flow("o-5", "alice", at=10).held()),  # the same time as o-2
    )
    async with backend.uow() as uow:
        results = await uow.views.with_class_results("alice", PageRequest(CLASS_RESULT_PAGES, 100))
    assert [view.order_id for view in results] == ["o-2", "o-5", "o-1"]
    assert {view.class_result for view in results} == {"Great form"}


async def test_a_listed_view_changed_is_not_written(backend: Backend) -> None:
    order = flow("o-1").placed()
    await stored(backend, folded(order))
    async with backend.uow() as uow:
        [view] = await uow.views.list(StatusFilter(), EVERY_VIEW)
        assert view.observe(order.order_cancelled().events[-1])
        await uow.commit()
    async with backend.uow() as uow:
        assert (await uow.views.get("o-1")).order_status is OrderStatus.PLACED


async def test_a_view_an_event_changed_is_written_back(backend: Backend) -> None:
    order = flow("o-1").placed()
    await stored(backend, folded(order))
    async with backend.uow() as uow:
        view = await uow.views.get("o-1")
        assert view.observe(order.assigned("t-kim").events[-1])
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.views.get("o-1") == folded(order)


async def test_a_view_only_read_is_not_written_over_a_newer_one(backend: Backend) -> None:
    order = flow("o-1").placed()
    await stored(backend, folded(order))
    async with backend.uow() as uow:
        view = await uow.views.get("o-1")
        assert not view.observe(order.events[0])  # a redelivery changes nothing
        await backend.another_writer_bumps(uow, "order_status_views", "o-1")
        await uow.commit()
    async with backend.uow() as uow:
        assert (await uow.views.get("o-1")).version == folded(order).version + 1


async def test_a_view_changed_by_another_writer_is_a_conflict(backend: Backend) -> None:
    order = flow("o-1").placed()
    await stored(backend, folded(order))
    async with backend.uow() as uow:
        stale = await uow.views.get("o-1")
        await backend.another_writer_bumps(uow, "order_status_views", "o-1")
        stale.observe(order.assigned("t-kim").events[-1])
        with pytest.raises(ConcurrencyConflict):
            await uow.commit()
    async with backend.uow() as uow:
        assert (await uow.views.get("o-1")).trainer_id == ""


# SQLite's BEGIN IMMEDIATE runs one writing unit of work at a time: no overlap to test
@pytest.mark.parametrize("store_url", ["memory", "postgresql"], indirect=True)
async def test_two_units_of_work_changing_one_view_conflict(backend: Backend) -> None:
    order = flow("o-1").placed().assigned("t-kim")
    assigned = order.events[-1]
    await stored(backend, folded(flow("o-1").placed()))
    async with backend.uow() as slow:
        stale = await slow.views.get("o-1")
        async with backend.uow() as fast:
            (await fast.views.get("o-1")).observe(assigned)
            await fast.commit()
        stale.observe(order.order_cancelled().events[-1])
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()
    async with backend.uow() as uow:
        view = await uow.views.get("o-1")
    assert (view.trainer_id, view.order_status) == ("t-kim", OrderStatus.PLACED)


@pytest.mark.parametrize("store_url", ["memory", "postgresql"], indirect=True)
async def test_two_units_of_work_adding_one_view_conflict(backend: Backend) -> None:
    async with backend.uow() as slow:
        async with backend.uow() as fast:
            await fast.views.add(folded(flow("o-1", "alice").placed()))
            await fast.commit()
        with pytest.raises(ConcurrencyConflict):
            await slow.views.add(folded(flow("o-1", "bob").placed()))
            await slow.commit()
    async with backend.uow() as uow:
        assert (await uow.views.get("o-1")).customer_id == "alice"


async def test_leaving_without_commit_keeps_nothing(backend: Backend) -> None:
    order = flow("o-1").placed()
    await stored(backend, folded(order))
    await recorded(backend, notification(1))
    async with backend.uow() as uow:
        before = await uow.notifications.last_sequence()
        (await uow.views.get("o-1")).observe(order.order_cancelled().events[-1])
        await uow.views.add(folded(flow("o-2").placed()))
        await uow.notifications.add(notification(2))
    async with backend.uow() as uow:
        assert (await uow.views.get("o-1")).order_status is OrderStatus.PLACED
        assert await uow.views.find("o-2") is None
        assert [n.notification_id for n in await uow.notifications.list("alice", NOTES)] == ["n-1"]
        assert await uow.notifications.last_sequence() == before


async def test_an_event_is_handled_once(backend: Backend) -> None:
    order = flow("o-1").placed()
    await stored(backend, folded(order))
    causation = Causation("status_svc", EVENT_ID)
    async with backend.uow(causation) as uow:
        (await uow.views.get("o-1")).observe(order.assigned("t-kim").events[-1])
        await uow.commit()
    with pytest.raises(AlreadyHandled):
        async with backend.uow(causation):
            pass
    async with backend.uow(Causation("another_consumer", EVENT_ID)) as uow:
        assert (await uow.views.get("o-1")).trainer_id == "t-kim"


async def test_an_event_handled_without_commit_may_be_handled_again(backend: Backend) -> None:
    causation = Causation("status_svc", EVENT_ID)
    async with backend.uow(causation) as uow:
        await uow.views.add(folded(flow("o-1").placed()))
    async with backend.uow(causation) as uow:
        await uow.views.add(folded(flow("o-1").placed()))
        await uow.commit()
    async with backend.uow() as uow:
        assert await uow.views.find("o-1") is not None


# --- notifications -------------------------------------------------------------------


async def test_a_notification_is_recorded_once(backend: Backend) -> None:
    async with backend.uow() as uow:
        await uow.notifications.add(notification(1))
        await uow.notifications.add(notification(1))
        await uow.commit()
    await recorded(backend, notification(1))
    async with backend.uow() as uow:
        assert await uow.notifications.list("alice", NOTES) == [notification(1)]
        assert len(await uow.notifications.since("alice", 0)) == 1


@pytest.mark.parametrize("store_url", ["memory", "postgresql"], indirect=True)
async def test_two_units_of_work_recording_one_notification_keep_one(backend: Backend) -> None:
    async with backend.uow() as slow:
        async with backend.uow() as fast:
            await fast.notifications.add(notification(1))
            await fast.commit()
        await slow.notifications.add(notification(1))
        await slow.commit()
    async with backend.uow() as uow:
        assert await uow.notifications.list("alice", NOTES) == [notification(1)]
        assert len(await uow.notifications.since("alice", 0)) == 1


async def test_notifications_are_listed_oldest_first_by_customer(backend: Backend) -> None:
    await recorded(
        backend,
        notification(1, minute=30),
        notification(2, minute=10),
        notification(3, "bob", minute=20),
        notification(4, minute=10),  # created when n-2 was
    )
    async with backend.uow() as uow:
        alice = await uow.notifications.list("alice", NOTES)
        carol = await uow.notifications.list("carol", NOTES)
    assert [n.notification_id for n in alice] == ["n-2", "n-4", "n-1"]
    assert alice[0] == notification(2, minute=10)
    assert carol == []


async def test_a_notification_shows_the_class_name_of_its_orders_view(backend: Backend) -> None:
    await stored(backend, folded(OrderFlow("o-1", class_name="Boxing").placed()))
    await recorded(backend, notification(1), notification(2))  # o-2 has no view yet
    async with backend.uow() as uow:
        shown = {n.order_id: n.class_name for n in await uow.notifications.list("alice", NOTES)}
        since = {n.order_id: n.class_name for n in await uow.notifications.since("alice", 0)}
    assert shown == since == {"o-1": "Boxing", "o-2": ""}


async def test_a_notification_keeps_what_it_tells(backend: Backend) -> None:
    refused = replace(notification(2), kind=NotificationKind.CANCELLATION_REFUSED)
    await recorded(backend, notification(1), refused)
    async with backend.uow() as uow:
        shown = [n.kind for n in await uow.notifications.list("alice", NOTES)]
        since = [n.kind for n in await uow.notifications.since("alice", 0)]
    assert shown == since == [NotificationKind.CLASS_RESULT_READY, refused.kind]


async def test_last_sequence_is_zero_before_any_notification(backend: Backend) -> None:
    async with backend.uow() as uow:
        assert await uow.notifications.last_sequence() == 0


async def test_since_gives_the_customers_notifications_recorded_after_a_sequence(
    backend: Backend,
) -> None:
    await recorded(backend, notification(1, minute=30), notification(2, "bob"))
    async with backend.uow() as uow:
        first = await uow.notifications.last_sequence()
        assert [n.notification_id for n in await uow.notifications.since("bob", 0)] == ["n-2"]
    await recorded(backend, notification(3, minute=10), notification(4, minute=5))
    async with backend.uow() as uow:
        assert await uow.notifications.last_sequence() > first
        everything = await uow.notifications.since("alice", 0)
        later = await uow.notifications.since("alice", first)
        newest = await uow.notifications.since("alice", await uow.notifications.last_sequence())
        for_bob = await uow.notifications.since("bob", first)
    # in the order they were recorded, not by when they were created
    assert [n.notification_id for n in everything] == ["n-1", "n-3", "n-4"]
    assert later == [notification(3, minute=10), notification(4, minute=5)]
    assert newest == for_bob == []


async def test_recorded_after_gives_every_customers_notifications_in_order_up_to_a_limit(
    backend: Backend,
) -> None:
    """What the one feed of all watches reads."""
    await recorded(backend, notification(1), notification(2, "bob"), notification(3))
    async with backend.uow() as uow:
        [first, *_] = await uow.notifications.recorded_after(0, 10)
        all_after_first = await uow.notifications.recorded_after(first.sequence, 10)
        two = await uow.notifications.recorded_after(0, 2)
        none = await uow.notifications.recorded_after(await uow.notifications.last_sequence(), 10)
    assert first.notification_id == "n-1"
    assert [(n.notification_id, n.customer_id) for n in all_after_first] == [
        ("n-2", "bob"),
        ("n-3", "alice"),
    ]
    assert [n.notification_id for n in two] == ["n-1", "n-2"]
    assert none == []


async def test_notifications_carry_their_sequence_a_resume_point_names(
    backend: Backend,
) -> None:
    await recorded(backend, notification(1), notification(2, "bob"), notification(3))
    async with backend.uow() as uow:
        everything = await uow.notifications.since("alice", 0)
        listed = await uow.notifications.list("alice", NOTES)
        last = await uow.notifications.last_sequence()
        after_first = await uow.notifications.since("alice", everything[0].sequence)
    sequences = [n.sequence for n in everything]
    assert 0 < sequences[0] < sequences[1] <= last
    assert [n.sequence for n in listed] == sequences
    assert [n.notification_id for n in after_first] == ["n-3"]


async def test_a_notification_in_the_same_unit_of_work_is_seen(backend: Backend) -> None:
    await stored(backend, folded(OrderFlow("o-1", class_name="Boxing").placed()))
    async with backend.uow() as uow:
        await uow.notifications.add(notification(1))
        assert await uow.notifications.last_sequence() > 0
        [shown] = await uow.notifications.since("alice", 0)
    assert shown == replace(notification(1), class_name="Boxing")
