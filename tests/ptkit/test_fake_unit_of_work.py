"""The in-memory unit of work keeps the SQL unit of work's promises (ptkit.testing)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ptkit.domain import Aggregate, ConcurrencyConflict, DomainEvent
from ptkit.sql import AlreadyHandled, Causation
from ptkit.testing import FakeUnitOfWork, InMemoryRepository


@dataclass(frozen=True, kw_only=True)
class Renamed(DomainEvent):
    name: str


@dataclass(kw_only=True)
class Thing(Aggregate):
    order_id: str
    name: str

    def rename(self, name: str) -> None:
        self.name = name
        self._record(Renamed(order_id=self.order_id, name=name))


class InMemoryThings(InMemoryRepository[Thing]):
    table = "things"
    key = "order_id"

    async def add(self, thing: Thing) -> None:
        self._insert(thing)

    async def get(self, order_id: str) -> Thing:
        thing = self._find(order_id)
        assert thing is not None
        return thing


async def _stored(uow: FakeUnitOfWork, name: str = "first") -> FakeUnitOfWork:
    async with uow:
        thing = Thing(order_id="o1", name="")
        thing.rename(name)
        await uow.things.add(thing)
        await uow.commit()
    return uow


async def test_a_commit_stores_the_state_and_its_events_together() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    assert uow.committed("things", "o1").name == "first"
    assert [(e.event.name, e.aggregate_version, e.causation_id) for e in uow.store.outbox] == [
        ("first", 1, "")
    ]


async def test_leaving_without_commit_rolls_back_state_and_events() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    async with uow.sibling() as other:
        (await other.things.get("o1")).rename("second")
    assert uow.committed("things", "o1").name == "first"
    assert len(uow.store.outbox) == 1


async def test_an_aggregate_changed_since_it_was_read_is_a_conflict() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    slow, fast = uow.sibling(), uow.sibling()
    async with slow:
        stale = await slow.things.get("o1")
        async with fast:
            (await fast.things.get("o1")).rename("fast")
            await fast.commit()
        stale.rename("slow")
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()
    assert uow.committed("things", "o1").name == "fast"
    assert [e.event.name for e in uow.store.outbox] == ["first", "fast"]


async def test_a_second_aggregate_with_the_same_key_is_a_conflict() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    async with uow.sibling() as other:
        with pytest.raises(ConcurrencyConflict):
            await other.things.add(Thing(order_id="o1", name="twin"))


async def test_an_event_is_handled_once_and_its_causation_reaches_the_outbox() -> None:
    uow = FakeUnitOfWork(things=InMemoryThings)
    causation = Causation("things_svc", "event-1")
    await _stored(uow.handling(causation))
    assert uow.store.outbox[0].causation_id == "event-1"
    with pytest.raises(AlreadyHandled):
        async with uow.handling(causation):
            pass
