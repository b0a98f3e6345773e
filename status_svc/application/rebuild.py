"""Rebuild the read model from the event history, while the live views keep serving.

The views and notifications are folded again, with status_svc's own policy table, into
fresh tables that carry their own processed-event marks (under the live consumer's
name, so they are a drop-in replacement). Then, in one transaction that holds the live
writer off, the rebuild catches up from its position to the tail of the event stream
(re-applying an event the views already hold changes nothing), checks that it holds
every event the live consumer marked, and swaps the fresh tables in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from typing import Protocol

from ptkit.messaging import EventUnitOfWork, PolicyHandler, bind
from ptkit.sql import AlreadyHandled
from ptplatform.events.v1 import events_pb2
from status_svc.application.bell import NotificationBell
from status_svc.application.policies import POLICIES

log = logging.getLogger(__name__)

CONSUMER = "status_svc"
"""The live consumer's name: its durable, and the consumer of its processed marks."""

SWAP_BACKLOG = 100
"""The catch-up before the swap goes on until a round reads at most this many events:
about what the swap transaction then applies while it holds the live writer off."""

CATCH_UP_ROUNDS = 5
"""Under a load faster than the replay the catch-up never gets that close; after this
many rounds the swap applies the rest (the stream up to its tail when the swap began),
holding the live writer off longer, but it ends."""


@dataclass(frozen=True)
class RecordedEvent:
    envelope: events_pb2.EventEnvelope
    position: int
    """The event's sequence in the domain-event stream."""


class EventHistory(Protocol):
    def archived(self) -> AsyncIterator[RecordedEvent]:
        """Every archived event, oldest first, up to the archive's tail when called."""
        ...

    def published_after(self, position: int) -> AsyncIterator[RecordedEvent]:
        """The domain-event stream after ``position``, up to its tail when called."""
        ...


@dataclass(frozen=True)
class RebuiltViews:
    views: int
    notifications: int


class ViewSwap(Protocol):
    """The swap transaction: the live writer waits until it ends."""

    def new_uow(self) -> EventUnitOfWork:
        """A unit of work on the fresh tables, inside the swap transaction."""
        ...

    async def missing(self, consumer: str) -> list[str]:
        """Events the live tables marked handled and the fresh ones did not."""
        ...

    async def swap(self) -> RebuiltViews:
        """Put the fresh tables in place of the live ones (committed when the block ends)."""
        ...


class ViewRebuildStore(Protocol):
    async def prepare(self) -> None:
        """Empty fresh tables, next to the live ones (which it does not touch)."""
        ...

    def new_uow(self) -> EventUnitOfWork:
        """A unit of work on the fresh tables."""
        ...

    def swapping(self) -> AbstractAsyncContextManager[ViewSwap]: ...


class HistoryIncomplete(Exception):
    """The history lacks events the live views hold: swapping would lose them."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(
            f"{len(event_ids)} events the live views handled are not in the history "
            f"(e.g. {event_ids[:3]}); the live views were kept"
        )
        self.event_ids = event_ids


@dataclass(frozen=True)
class RebuildSummary:
    events: int
    """Events replayed (each applied once to the fresh tables)."""
    views: int
    notifications: int
    seconds: float
    failed: tuple[str, ...] = ()
    """Events whose policy raised: left out, as the live consumer dead-letters them
    (``ptctl dlq``); a later rebuild applies them once the policy is fixed."""


class _Replay:
    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.policies = bind(POLICIES, bell=NotificationBell())
        self.position = 0
        self.applied = 0
        self.failed: list[str] = []

    async def run(
        self, events: AsyncIterator[RecordedEvent], new_uow: Callable[[], EventUnitOfWork]
    ) -> int:
        """Apply the events; return how many were read."""
        read = 0
        handler = PolicyHandler(self.consumer, self.policies, new_uow)
        async with aclosing(events):
            async for recorded in events:
                try:
                    await handler(recorded.envelope)
                except AlreadyHandled:
                    pass  # a copy (or the catch-up meeting the replay): nothing changes
                except Exception as error:
                    self.failed.append(recorded.envelope.event_id)
                    log.warning(
                        "event left out of the rebuild: its policy failed",
                        extra={
                            "event_id": recorded.envelope.event_id,
                            "event_type": recorded.envelope.event_type,
                            "order_id": recorded.envelope.order_id,
                            "error": repr(error),
                        },
                    )
                else:
                    self.applied += 1
                self.position = max(self.position, recorded.position)
                read += 1
        return read


async def rebuild_views(
    history: EventHistory, store: ViewRebuildStore, consumer: str = CONSUMER
) -> RebuildSummary:
    """Replay the archive into fresh tables, catch up, then swap them in atomically.

    Raises :class:`HistoryIncomplete` (and leaves the live views as they were) when the
    history misses events the live views hold.
    """
    started = time.monotonic()
    replay = _Replay(consumer)
    await store.prepare()
    await replay.run(history.archived(), store.new_uow)
    # catch up with the stream (the archive lags it a little) without holding the live
    # writer off, until little is left for the swap to apply
    for _ in range(CATCH_UP_ROUNDS):
        caught_up = await replay.run(history.published_after(replay.position), store.new_uow)
        if caught_up <= SWAP_BACKLOG:
            break
    async with store.swapping() as swap:
        await replay.run(history.published_after(replay.position), swap.new_uow)
        missing = await swap.missing(consumer)
        if missing:
            raise HistoryIncomplete(missing)
        rebuilt = await swap.swap()
    return RebuildSummary(
        events=replay.applied,
        views=rebuilt.views,
        notifications=rebuilt.notifications,
        seconds=time.monotonic() - started,
        failed=tuple(replay.failed),
    )
