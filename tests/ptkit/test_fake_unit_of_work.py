"""The in-memory unit of work keeps the SQL unit of work's promises (ptkit.testing)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ptkit.domain import Aggregate, ConcurrencyConflict, DomainEvent
from ptkit.sql import AlreadyHandled, Causation
from ptkit.testing import FakeUnitOfWork, InMemoryRepository, MemoryStore


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


# --- unique values ---------------------------------------------------------------------


@dataclass(kw_only=True)
class Booking(Aggregate):
    order_id: str
    customer_id: str
    request_id: str | None = None


class InMemoryBookings(InMemoryRepository[Booking]):
    table = "bookings"
    key = "order_id"
    unique = (("customer_id", "request_id"),)

    async def add(self, booking: Booking) -> None:
        self._insert(booking)


async def _booked(uow: FakeUnitOfWork, *bookings: Booking) -> FakeUnitOfWork:
    async with uow:
        for booking in bookings:
            await uow.bookings.add(booking)
        await uow.commit()
    return uow


async def test_a_row_with_the_unique_values_of_another_is_a_conflict_on_add() -> None:
    uow = await _booked(
        FakeUnitOfWork(bookings=InMemoryBookings),
        Booking(order_id="o1", customer_id="alice", request_id="r1"),
    )
    async with uow.sibling() as other:
        with pytest.raises(ConcurrencyConflict):
            await other.bookings.add(Booking(order_id="o2", customer_id="alice", request_id="r1"))
        await other.bookings.add(Booking(order_id="o3", customer_id="bob", request_id="r1"))
        await other.bookings.add(Booking(order_id="o4", customer_id="alice", request_id="r2"))
        await other.commit()
    assert sorted(uow.store.table("bookings")) == ["o1", "o3", "o4"]


async def test_a_null_among_the_unique_values_may_repeat() -> None:
    uow = await _booked(
        FakeUnitOfWork(bookings=InMemoryBookings),
        Booking(order_id="o1", customer_id="alice"),
        Booking(order_id="o2", customer_id="alice"),
    )
    assert sorted(uow.store.table("bookings")) == ["o1", "o2"]


async def test_unique_values_committed_meanwhile_by_another_are_a_conflict_at_commit() -> None:
    uow = FakeUnitOfWork(bookings=InMemoryBookings)
    async with uow.sibling() as slow:
        await _booked(uow.sibling(), Booking(order_id="o1", customer_id="alice", request_id="r1"))
        await slow.bookings.add(Booking(order_id="o2", customer_id="alice", request_id="r1"))
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()
    assert sorted(uow.store.table("bookings")) == ["o1"]


# --- what is written back ----------------------------------------------------------------


async def test_a_unit_of_work_that_only_read_a_row_does_not_overwrite_a_newer_commit() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    async with uow.sibling() as reader:
        assert (await reader.things.get("o1")).name == "first"
        async with uow.sibling() as writer:
            (await writer.things.get("o1")).rename("second")
            await writer.commit()
        await reader.commit()
    assert uow.committed("things", "o1").name == "second"
    assert uow.committed("things", "o1").version == 2


async def test_a_row_changed_without_a_new_version_is_not_written_back() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    async with uow.sibling() as other:
        (await other.things.get("o1")).name = "behind the aggregate's back"
        await other.commit()
    assert uow.committed("things", "o1").name == "first"


# --- sequences -----------------------------------------------------------------------------


@dataclass
class Ticket:
    ticket_id: str
    number: int


class InMemoryTickets(InMemoryRepository[Ticket]):
    table = "tickets"
    key = "ticket_id"

    async def add(self, ticket_id: str) -> Ticket:
        self._inside()
        stored = max((ticket.number for ticket in self.rows.values()), default=0)
        ticket = Ticket(ticket_id, self._store.next_sequence(self.table, at_least=stored))
        self._insert(ticket)
        return ticket


async def test_a_sequence_never_hands_out_a_number_again_after_a_rollback() -> None:
    uow = FakeUnitOfWork(tickets=InMemoryTickets)
    async with uow.sibling() as first:
        assert (await first.tickets.add("t1")).number == 1
        await first.commit()
    async with uow.sibling() as rolled_back:
        assert (await rolled_back.tickets.add("t2")).number == 2
    async with uow.sibling() as third:
        assert (await third.tickets.add("t3")).number == 3
        await third.commit()
    assert {k: t.number for k, t in uow.store.table("tickets").items()} == {"t1": 1, "t3": 3}


async def test_a_sequence_continues_above_the_largest_number_stored() -> None:
    store = MemoryStore()
    assert store.next_sequence("tickets", at_least=41) == 42
    assert store.next_sequence("tickets") == 43
    assert store.next_sequence("other") == 1


# --- outside the unit of work ----------------------------------------------------------


async def test_repository_queries_outside_async_with_raise() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    assert uow.things.rows["o1"].name == "first"  # the committed rows, for assertions
    with pytest.raises(RuntimeError):
        await uow.things.get("o1")
    with pytest.raises(RuntimeError):
        await uow.things.add(Thing(order_id="o2", name="x"))


async def test_a_repository_kept_past_its_unit_of_work_refuses_queries() -> None:
    uow = await _stored(FakeUnitOfWork(things=InMemoryThings))
    async with uow.sibling() as other:
        kept = other.things
    with pytest.raises(RuntimeError):
        await kept.get("o1")


# --- read models ------------------------------------------------------------------------


@dataclass(kw_only=True)
class Tally:
    """A read model: a version for optimistic locking, no events."""

    order_id: str
    seen: int = 0
    version: int = 0

    def count(self) -> None:
        self.seen += 1
        self.version += 1


class InMemoryTallies(InMemoryRepository[Tally]):
    table = "tallies"
    key = "order_id"

    async def add(self, tally: Tally) -> None:
        self._insert(tally)

    async def get(self, order_id: str) -> Tally:
        tally = self._find(order_id)
        assert tally is not None
        return tally


async def _tallied() -> FakeUnitOfWork:
    uow = FakeUnitOfWork(tallies=InMemoryTallies)
    async with uow.sibling() as first:
        await first.tallies.add(Tally(order_id="o1"))
        await first.commit()
    return uow


async def test_a_read_model_is_written_back_when_its_version_changes() -> None:
    uow = await _tallied()
    async with uow.sibling() as other:
        (await other.tallies.get("o1")).count()
        await other.commit()
    assert uow.committed("tallies", "o1") == Tally(order_id="o1", seen=1, version=1)
    assert uow.store.outbox == []


async def test_a_read_model_changed_since_it_was_read_is_a_conflict() -> None:
    uow = await _tallied()
    async with uow.sibling() as slow:
        stale = await slow.tallies.get("o1")
        async with uow.sibling() as fast:
            (await fast.tallies.get("o1")).count()
            await fast.commit()
        stale.count()
        with pytest.raises(ConcurrencyConflict):
            await slow.commit()
    assert uow.committed("tallies", "o1") == Tally(order_id="o1", seen=1, version=1)
