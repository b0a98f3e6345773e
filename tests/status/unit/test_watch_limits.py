"""What a watch may cost: it ends when its token expires, a caller and a replica hold a
bounded number, and all of a replica's watches share one read of the notifications."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from ptkit.auth import Caller, Role
from status_svc.application import handlers
from status_svc.application.bell import NotificationBell
from status_svc.application.watch import (
    NotificationFeed,
    NotificationWatch,
    TooManyWatches,
    WatchExpired,
    WatchLimits,
    WatchSlots,
)
from status_svc.domain.notifications import Notification
from tests.helpers import eventually
from tests.status.fakes import FakeStatusUnitOfWork as FakeUnitOfWork
from tests.status.unit.test_handlers import notification

ALICE = Caller("alice", Role.CUSTOMER)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def expiring_watch(
    uow: FakeUnitOfWork, poll_seconds: float, until: float, clock: Callable[[], float]
) -> NotificationWatch:
    """Alice's watch from the first notification on, whose token expires at ``until``."""
    feed = NotificationFeed(lambda: uow, NotificationBell(), poll_seconds)
    return NotificationWatch("alice", uow, feed, asyncio.Event(), 0, until, clock=clock)


async def test_a_watch_ends_when_its_token_expires_naming_the_last_sequence_sent() -> None:
    uow, clock = FakeUnitOfWork(), Clock()
    stream = expiring_watch(uow, 0.01, clock.now + 60, clock).notifications()
    uow.notifications.record(notification(1))
    sent = await asyncio.wait_for(anext(stream), 2)
    clock.now += 61
    with pytest.raises(WatchExpired) as expired:
        await asyncio.wait_for(anext(stream), 2)
    assert expired.value.reason == "TOKEN_EXPIRED"
    assert expired.value.metadata == {"last_sequence": str(sent.sequence)}


async def test_a_watch_whose_token_expires_while_nothing_happens_ends_on_time() -> None:
    loop = asyncio.get_running_loop()
    watch = expiring_watch(FakeUnitOfWork(), 60, loop.time() + 0.2, loop.time)
    with pytest.raises(WatchExpired):
        await asyncio.wait_for(anext(watch.notifications()), 2)


def test_a_caller_holds_at_most_its_share_of_watches_and_gets_them_back() -> None:
    slots = WatchSlots(WatchLimits(per_caller=2, total=10))
    with slots.hold(ALICE), slots.hold(ALICE):
        with pytest.raises(TooManyWatches) as refused:
            with slots.hold(ALICE):
                pass
        assert refused.value.metadata == {"limit": "2", "scope": "caller"}
        with slots.hold(Caller("bob", Role.CUSTOMER)):
            pass
    with slots.hold(ALICE):
        assert slots.open == 1


def test_the_replica_holds_at_most_its_total_of_watches() -> None:
    slots = WatchSlots(WatchLimits(per_caller=5, total=2))
    with slots.hold(ALICE), slots.hold(Caller("bob", Role.CUSTOMER)):
        with pytest.raises(TooManyWatches) as refused:
            with slots.hold(Caller("kim", Role.CUSTOMER)):
                pass
    assert refused.value.metadata == {"limit": "2", "scope": "server"}
    assert slots.open == 0


async def test_a_watch_over_the_callers_limit_is_refused_before_it_starts() -> None:
    uow, closing = FakeUnitOfWork(), asyncio.Event()
    feed = NotificationFeed(lambda: uow, NotificationBell(), 60)
    slots = WatchSlots(WatchLimits(per_caller=1, total=10))
    query = handlers.WatchNotifications("", ALICE, after_sequence=0)
    ready: list[int] = []

    async def told() -> None:
        ready.append(1)

    first = handlers.watch_notifications(query, uow, feed, slots, closing).notifications(told)
    waiting = asyncio.ensure_future(anext(first))
    await eventually(lambda: _true(ready), timeout=2, what="the first watch is ready")
    second = handlers.watch_notifications(query, uow, feed, slots, closing).notifications(told)
    with pytest.raises(TooManyWatches):
        await anext(second)
    assert ready == [1]
    closing.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 2)
    assert slots.open == 0


async def _true(values: list[int]) -> bool:
    return bool(values)


async def test_fifty_watches_share_one_read_of_the_notifications() -> None:
    uow, closing, bell = FakeUnitOfWork(), asyncio.Event(), NotificationBell()
    feed = NotificationFeed(lambda: uow, bell, poll_seconds=60)
    streams: list[AsyncIterator[Notification]] = [
        NotificationWatch("alice", uow, feed, closing, after=0).notifications() for _ in range(50)
    ]
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]

    async def all_waiting() -> bool:
        # each watch read its replay once, the feed read once and pauses for 60 s
        return feed.watches == 50 and uow.notifications.polls == 51

    await eventually(all_waiting, timeout=2, what="50 watches waiting")
    uow.notifications.record(notification(1))
    bell.ring()
    received = await asyncio.wait_for(asyncio.gather(*waiting), 2)
    assert {n.notification_id for n in received} == {"n-1"}
    assert uow.notifications.polls == 52
    for stream in streams:
        await stream.aclose()
    assert feed.watches == 0

    async def stopped() -> bool:
        return not feed.polling

    await eventually(stopped, timeout=1, what="the feed stops with its last watch")


async def test_the_feed_goes_on_after_a_failed_read() -> None:
    uow, opened = FakeUnitOfWork(), []

    def database_away_once() -> FakeUnitOfWork:
        opened.append(1)
        if len(opened) == 2:  # the feed's first read
            raise ConnectionError("database away")
        return uow

    feed = NotificationFeed(database_away_once, NotificationBell(), poll_seconds=0.01)
    stream = NotificationWatch("alice", uow, feed, asyncio.Event(), after=0).notifications()
    waiting = asyncio.ensure_future(anext(stream))

    async def failed_once() -> bool:
        return len(opened) >= 3

    await eventually(failed_once, timeout=2, what="a failed read and a retry")
    uow.notifications.record(notification(1))
    assert (await asyncio.wait_for(waiting, 2)).notification_id == "n-1"
    await stream.aclose()
