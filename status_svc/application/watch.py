"""WatchNotifications: replay what a watcher missed, then stream new notifications.

One :class:`NotificationFeed` per process reads the notifications table for every open
watch at once and hands each notification to the watches of its customer, so an open
watch holds no database connection and costs no query while it waits: 500 idle watches
cost the unary calls beside them one poll per interval, not 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, aclosing, contextmanager, nullcontext
from dataclasses import dataclass

from ptkit.auth import Caller, Unauthenticated
from ptkit.domain import LimitReached
from status_svc.application.bell import NotificationBell
from status_svc.application.ports import UnitOfWork
from status_svc.domain.notifications import Notification

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
FEED_BATCH = 500
"""Notifications the feed reads in one query; a full batch is followed by the next at once."""
INBOX_SIZE = 1000
"""Notifications an inbox holds for a watch that does not keep up; beyond it the watch
reads what it missed from the database again."""


class Inbox:
    """What the feed hands one watch: notifications of its customer, in sequence order."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(INBOX_SIZE)
        self.overflowed = False

    def deliver(self, notification: Notification) -> None:
        try:
            self.queue.put_nowait(notification)
        except asyncio.QueueFull:
            self.overflowed = True

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.overflowed = False


class NotificationFeed:
    """Reads notifications recorded after the newest it has seen, for all customers at
    once, and delivers each to the inboxes of its customer.

    Several replicas may record notifications in one database, so the feed polls by the
    sequence column; this replica's :class:`NotificationBell` only cuts the wait short.
    The poller runs while at least one watch is subscribed.
    """

    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        bell: NotificationBell,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.new_uow = new_uow
        self.bell = bell
        self.poll_seconds = poll_seconds
        self._inboxes: dict[str, set[Inbox]] = {}
        self._after: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._ready = asyncio.Lock()
        self._emptied = asyncio.Event()
        """Set when the last watch leaves: the poller stops at once, not a poll later."""

    @property
    def watches(self) -> int:
        return sum(len(inboxes) for inboxes in self._inboxes.values())

    @property
    def polling(self) -> bool:
        return self._poller is not None and not self._poller.done()

    async def subscribe(self, customer_id: str) -> Inbox:
        """An inbox that gets every notification of the customer recorded after the
        newest one visible now (read it from the database first for older ones)."""
        async with self._ready:
            if self._after is None:
                async with self.new_uow() as uow:
                    self._after = await uow.notifications.last_sequence()
            inbox = Inbox(customer_id)
            self._inboxes.setdefault(customer_id, set()).add(inbox)
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll(), name="notification feed")
        return inbox

    def unsubscribe(self, inbox: Inbox) -> None:
        inboxes = self._inboxes.get(inbox.customer_id, set())
        inboxes.discard(inbox)
        if not inboxes:
            self._inboxes.pop(inbox.customer_id, None)
        if not self._inboxes:
            self._emptied.set()

    async def _poll(self) -> None:
        with self.bell.listen() as rung:
            while self._inboxes:
                try:
                    full = await self._read() == FEED_BATCH
                except Exception:  # the database is away: the watches wait, the feed retries
                    log.warning("reading notifications for the watches failed", exc_info=True)
                    full = False
                if not full:
                    self._emptied.clear()
                    if self._inboxes:
                        await _first_of([rung, self._emptied], self.poll_seconds)
                    rung.clear()
        # idle: the next subscriber starts from what is newest then
        self._after = None

    async def _read(self) -> int:
        assert self._after is not None
        async with self.new_uow() as uow:
            batch = await uow.notifications.recorded_after(self._after, FEED_BATCH)
        for notification in batch:
            self._after = notification.sequence
            for inbox in self._inboxes.get(notification.customer_id, ()):
                inbox.deliver(notification)
        return len(batch)


class WatchExpired(Unauthenticated):
    """The watcher's token expired while the watch was open (metadata: the sequence of
    the last notification sent, the resume point for a watch with a fresh token)."""

    default_reason = "TOKEN_EXPIRED"

    def __init__(self, last_sequence: int) -> None:
        super().__init__(
            "token expired; watch again with a fresh token and "
            f"after_sequence={last_sequence} to miss nothing",
            metadata={"last_sequence": str(last_sequence)},
        )


class NotificationWatch:
    """Streams the notifications of one customer: those recorded after ``after`` (a
    watcher's resume point), or, without one, those recorded after :meth:`start`; until
    the server closes or ``until`` (the watcher's token expiry, seconds since the epoch)
    passes, which ends it with :class:`WatchExpired`.

    The repository makes notifications visible in sequence order (see the
    ``Notifications`` port), so the watch only needs the sequence of the last
    notification it sent: a reconnecting watcher that passes it gets everything it
    missed, each notification again at most when it was sent but not received (at least
    once; ids deduplicate).
    """

    def __init__(
        self,
        customer_id: str,
        uow: UnitOfWork,
        feed: NotificationFeed,
        closing: asyncio.Event,
        after: int | None = None,
        until: float | None = None,
        slot: AbstractContextManager[None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.customer_id = customer_id
        self.uow = uow
        self.feed = feed
        self.closing = closing
        self.until = until
        self.slot = slot or nullcontext()
        self.clock = clock
        self._after = after

    async def start(self) -> None:
        """Fix the starting point: without a resume point, notifications recorded from
        now on are streamed."""
        if self._after is None:
            async with self.uow:
                self._after = await self.uow.notifications.last_sequence()

    @property
    def last_sequence(self) -> int:
        return self._after or 0

    async def notifications(
        self, ready: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[Notification]:
        """Missed ones first, then new ones, until ``closing`` is set (the server shuts
        down) or the token expires. The watch takes its ``slot`` first (refused when
        none is free: :class:`TooManyWatches`), then fixes its starting point and awaits
        ``ready`` (the adapter tells the client that it is watching)."""
        with self.slot:
            await self.start()
            if ready is not None:
                await ready()
            async with aclosing(self._stream()) as stream:
                async for notification in stream:
                    yield notification

    async def _stream(self) -> AsyncIterator[Notification]:
        inbox = await self.feed.subscribe(self.customer_id)
        try:
            for notification in await self._recorded():
                yield self._sent(notification)
            while not self.closing.is_set():
                self._refuse_if_expired()
                if inbox.overflowed:
                    inbox.drain()
                    for notification in await self._recorded():
                        yield self._sent(notification)
                notification = await self._next(inbox)
                if notification is not None and notification.sequence > self.last_sequence:
                    yield self._sent(notification)
        finally:
            self.feed.unsubscribe(inbox)

    def _sent(self, notification: Notification) -> Notification:
        self._after = notification.sequence
        return notification

    def _refuse_if_expired(self) -> None:
        if self.until is not None and self.clock() >= self.until:
            raise WatchExpired(self.last_sequence)

    async def _next(self, inbox: Inbox) -> Notification | None:
        """The inbox's next notification; None when the server closes or the token expires."""
        timeout = None if self.until is None else max(0.0, self.until - self.clock())
        getting = asyncio.ensure_future(inbox.queue.get())
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait(
                [getting, closing], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if getting.done():
                return getting.result()
            return None
        finally:
            for waiting in (getting, closing):
                waiting.cancel()

    async def _recorded(self) -> list[Notification]:
        async with self.uow:
            return await self.uow.notifications.since(self.customer_id, self.last_sequence)


async def _first_of(events: list[asyncio.Event], timeout: float) -> None:
    """Until one of ``events`` is set or ``timeout`` passes."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@dataclass(frozen=True)
class WatchLimits:
    """How many watches one replica keeps open: per caller (the token's role and
    subject) and in all. Watches beyond them are refused, so one caller cannot hold
    what everyone's watches and calls share."""

    per_caller: int = 4
    total: int = 256


class TooManyWatches(LimitReached):
    """A watch over the caller's or the replica's limit (metadata: which, and the limit)."""

    default_reason = "TOO_MANY_WATCHES"


class WatchSlots:
    """Counts the open watches against :class:`WatchLimits`."""

    def __init__(self, limits: WatchLimits) -> None:
        self.limits = limits
        self._by_caller: dict[tuple[str, str], int] = {}
        self._total = 0

    @property
    def open(self) -> int:
        return self._total

    @contextmanager
    def hold(self, caller: Caller) -> Iterator[None]:
        """A slot for one watch of ``caller`` while the block runs; refused when full."""
        key = (caller.role.value, caller.subject)
        mine = self._by_caller.get(key, 0)
        if mine >= self.limits.per_caller:
            raise TooManyWatches(
                f"{caller.subject!r} has {mine} watches open, the most one caller may have",
                metadata={"limit": str(self.limits.per_caller), "scope": "caller"},
            )
        if self._total >= self.limits.total:
            raise TooManyWatches(
                f"this server has {self._total} watches open, the most it takes; retry later",
                metadata={"limit": str(self.limits.total), "scope": "server"},
            )
        self._by_caller[key] = mine + 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            left = self._by_caller[key] - 1
            if left:
                self._by_caller[key] = left
            else:
                del self._by_caller[key]
