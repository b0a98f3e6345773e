"""WatchNotifications: stream a customer's new notifications as they are recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from status_svc.application.bell import NotificationBell
from status_svc.application.ports import UnitOfWork
from status_svc.domain.notifications import Notification

POLL_SECONDS = 0.5


class NotificationWatch:
    """Streams the notifications of one customer recorded after :meth:`start`.

    Several replicas may record notifications in one database, so every replica's
    watchers poll the notifications table by its sequence column; this replica's
    :class:`NotificationBell` only cuts the wait short. A sequence number is taken when a
    row is inserted but the row shows at commit, so a smaller number can appear after a
    larger one: the watch re-reads everything after its starting point and skips what it
    already sent (a customer gets a handful of notifications, not thousands).
    """

    def __init__(
        self,
        customer_id: str,
        uow: UnitOfWork,
        bell: NotificationBell,
        closing: asyncio.Event,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.customer_id = customer_id
        self.uow = uow
        self.bell = bell
        self.closing = closing
        self.poll_seconds = poll_seconds
        self._after: int | None = None
        self._sent: set[str] = set()

    async def start(self) -> None:
        """Mark the starting point: notifications recorded from now on are streamed."""
        async with self.uow:
            self._after = await self.uow.notifications.last_sequence()

    async def notifications(self) -> AsyncIterator[Notification]:
        """New notifications until ``closing`` is set (the server shuts down)."""
        if self._after is None:
            await self.start()
        with self.bell.listen() as rung:
            while not self.closing.is_set():
                for notification in await self._unsent():
                    self._sent.add(notification.notification_id)
                    yield notification
                await self._pause(rung)

    async def _unsent(self) -> list[Notification]:
        assert self._after is not None
        async with self.uow:
            recorded = await self.uow.notifications.since(self.customer_id, self._after)
        return [n for n in recorded if n.notification_id not in self._sent]

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
