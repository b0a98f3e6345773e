"""WatchNotifications: replay what a watcher missed, then stream new notifications."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from status_svc.application.bell import NotificationBell
from status_svc.application.ports import UnitOfWork
from status_svc.domain.notifications import Notification

POLL_SECONDS = 0.5


class NotificationWatch:
    """Streams the notifications of one customer: those recorded after ``after`` (a
    watcher's resume point), or, without one, those recorded after :meth:`start`.

    Several replicas may record notifications in one database, so every replica's
    watchers poll the notifications table by its sequence column; this replica's
    :class:`NotificationBell` only cuts the wait short. The repository makes
    notifications visible in sequence order (see the ``Notifications`` port), so the
    watch only needs the sequence of the last notification it sent: a reconnecting
    watcher that passes it gets everything it missed, each notification again at most
    when it was sent but not received (at least once; ids deduplicate).
    """

    def __init__(
        self,
        customer_id: str,
        uow: UnitOfWork,
        bell: NotificationBell,
        closing: asyncio.Event,
        poll_seconds: float = POLL_SECONDS,
        after: int | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.uow = uow
        self.bell = bell
        self.closing = closing
        self.poll_seconds = poll_seconds
        self._after = after

    async def start(self) -> None:
        """Fix the starting point: without a resume point, notifications recorded from
        now on are streamed."""
        if self._after is None:
            async with self.uow:
                self._after = await self.uow.notifications.last_sequence()

    async def notifications(self) -> AsyncIterator[Notification]:
        """Missed ones first, then new ones, until ``closing`` is set (the server shuts down)."""
        await self.start()
        with self.bell.listen() as rung:
            while not self.closing.is_set():
                for notification in await self._recorded():
                    self._after = notification.sequence
                    yield notification
                await self._pause(rung)

    async def _recorded(self) -> list[Notification]:
        assert self._after is not None
        async with self.uow:
            return await self.uow.notifications.since(self.customer_id, self._after)

    async def _pause(self, rung: asyncio.Event) -> None:
        """Until the bell rings, the server closes or the poll interval passes."""
        waits = [asyncio.ensure_future(rung.wait()), asyncio.ensure_future(self.closing.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
        rung.clear()
