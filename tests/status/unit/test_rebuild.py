"""The view rebuild use case with in-memory ports: it ends even when events arrive
faster than it replays them, and the swap then applies what is left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count

from status_svc.application.rebuild import (
    CATCH_UP_ROUNDS,
    SWAP_BACKLOG,
    RebuiltViews,
    RecordedEvent,
    rebuild_views,
)
from tests.status.fakes import FakeStatusUnitOfWork
from tests.status.flows import OrderFlow, envelope_of


class EndlessStream:
    """An archive of one booking, and a stream that has grown by more than the swap
    backlog each time it is read again (a load faster than the replay)."""

    def __init__(self) -> None:
        self.clock = count()
        self.position = 0
        self.reads = 0

    def _more(self, orders: int) -> list[RecordedEvent]:
        recorded = []
        for _ in range(orders):
            for event in OrderFlow(customer_id="c-1", clock=self.clock).placed().events:
                self.position += 1
                recorded.append(RecordedEvent(envelope_of(event), self.position))
        return recorded

    async def archived(self) -> AsyncIterator[RecordedEvent]:
        for recorded in self._more(1):
            yield recorded

    async def published_after(self, position: int) -> AsyncIterator[RecordedEvent]:
        self.reads += 1
        for recorded in self._more(SWAP_BACKLOG + 1):
            yield recorded


class MemoryRebuild:
    def __init__(self) -> None:
        self.uow = FakeStatusUnitOfWork()
        self.swapped = False
        self.applied_in_swap = 0

    async def prepare(self) -> None:
        return None

    def new_uow(self) -> FakeStatusUnitOfWork:
        return self.uow.sibling()

    @asynccontextmanager
    async def swapping(self) -> AsyncIterator[MemoryRebuild]:
        yield self

    async def missing(self, consumer: str) -> list[str]:
        return []

    async def swap(self) -> RebuiltViews:
        self.swapped = True
        return RebuiltViews(views=len(self.uow.store.tables["order_status_views"]), notifications=0)


async def test_a_stream_faster_than_the_replay_still_ends_in_a_swap() -> None:
    history, store = EndlessStream(), MemoryRebuild()

    summary = await rebuild_views(history, store)

    assert store.swapped
    assert history.reads == CATCH_UP_ROUNDS + 1, "the catch-up rounds, then the swap's read"
    assert summary.events == history.position
    assert summary.views == 1 + (CATCH_UP_ROUNDS + 1) * (SWAP_BACKLOG + 1)
