"""The in-memory unit of work for unit tests of domains and use cases.

It keeps the promises of :class:`ptkit.sql.SqlUnitOfWork`, so a use case that passes
against it behaves the same on SQLite and PostgreSQL (the repository contract suites
run both):

- a unit of work works on its own copy: what it read or added is written back when it
  commits, and seen by later units of work only then; leaving the block without commit
  rolls everything back;
- an aggregate changed since it was read, or a second aggregate with the same key, is a
  :class:`ConcurrencyConflict` at commit (optimistic locking, as the SQL ``WHERE
  version = ...``);
- the events the tracked aggregates recorded land in :attr:`MemoryStore.outbox` with
  their causation, in the same commit as the state;
- a unit of work bound to an event its consumer already handled raises
  :class:`AlreadyHandled`;
- only what a unit of work added or changed (a new version) is written back, as the SQL
  one updates changed rows only; a second row with the same values of a unique
  constraint (:attr:`InMemoryRepository.unique`) is a conflict, as the SQL insert is.

Outside ``async with`` a unit of work's repositories hold the committed rows, for a
test's own arrangement and assertions (``uow.orders.rows["o-1"]``, as a test would read
the database directly); their queries refuse to run there, as a closed connection would.

A service's tests declare an in-memory repository per port by subclassing
:class:`InMemoryRepository` (a table name, the key attribute, and the port's queries
over :meth:`InMemoryRepository._rows`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from ptkit.domain import Aggregate, ConcurrencyConflict, DomainEvent
from ptkit.sql import AlreadyHandled, Causation

T = TypeVar("T")


@dataclass(frozen=True)
class OutboxEntry:
    """What the SQL unit of work would write to the outbox table for one event."""

    event: DomainEvent
    aggregate_version: int
    causation_id: str


@dataclass
class MemoryStore:
    """The committed state that the units of work of one test share: one database."""

    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[OutboxEntry] = field(default_factory=list)
    processed: set[tuple[str, str]] = field(default_factory=set)
    commits: int = 0
    sequences: dict[str, int] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        return self.tables.setdefault(name, {})

    def next_sequence(self, name: str, at_least: int = 0) -> int:
        """The next number of a database sequence: never handed out twice, not given back
        by a rollback, and above ``at_least`` (the largest number already stored)."""
        number = max(self.sequences.get(name, 0), at_least) + 1
        self.sequences[name] = number
        return number

    @property
    def events(self) -> list[DomainEvent]:
        """The committed events, oldest first."""
        return [entry.event for entry in self.outbox]


class InMemoryRepository(Generic[T]):
    """Rows of one table, keyed by the ``key`` attribute of what they hold.

    Aggregates handed out by :meth:`_find` and added by :meth:`_insert` are tracked: the
    unit of work checks their versions and collects their events at commit. Lists hand
    out copies, as a SQL query hands out new objects.
    """

    table: ClassVar[str]
    key: ClassVar[str]
    unique: ClassVar[tuple[tuple[str, ...], ...]] = ()
    """Attributes whose values no two rows share (a unique constraint); a ``None`` among
    them is NULL, which the constraint lets repeat."""

    def __init__(
        self,
        rows: dict[str, T],
        store: MemoryStore,
        working: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """``working`` is the unit of work's copy of every table (``rows`` is one of
        them); ``None`` outside a unit of work, where ``rows`` are the committed ones."""
        self.rows = rows
        self._store = store
        self._working = working
        self.seen: list[T] = []
        self.loaded_versions: dict[int, int | None] = {}

    def _inside(self) -> None:
        if self._working is None:
            raise RuntimeError(f"{type(self).__name__} used outside 'async with' its unit of work")

    def _table(self, name: str) -> dict[str, Any]:
        """Another table as this unit of work sees it (for a join)."""
        self._inside()
        assert self._working is not None
        return self._working.setdefault(name, {})

    def _unique_values(self, item: T, columns: tuple[str, ...]) -> tuple[Any, ...] | None:
        """The values of a unique constraint; ``None`` when one is NULL. A repository
        whose SQL mapping stores a value as NULL (an empty string) says so here."""
        values = tuple(getattr(item, column) for column in columns)
        return None if any(value is None for value in values) else values

    def _duplicates(self, item: T, rows: dict[str, Any]) -> Iterable[str]:
        """Keys of other rows in ``rows`` that share a unique constraint's values."""
        key = getattr(item, self.key)
        for columns in self.unique:
            values = self._unique_values(item, columns)
            if values is None:
                continue
            for other_key, other in rows.items():
                if other_key != key and self._unique_values(other, columns) == values:
                    yield other_key

    def _track(self, item: T, loaded_version: int | None) -> None:
        self.seen.append(item)
        self.loaded_versions[id(item)] = loaded_version

    def _insert(self, item: T) -> None:
        self._inside()
        key = getattr(item, self.key)
        if key in self.rows or any(self._duplicates(item, self.rows)):
            raise ConcurrencyConflict(f"{type(item).__name__} {key} was created concurrently")
        self.rows[key] = item
        self._track(item, None)

    def _find(self, key: str) -> T | None:
        """The row with ``key``, tracked (what a SQL repository's ``_load`` hands out)."""
        self._inside()
        item = self.rows.get(key)
        if item is not None and all(item is not seen for seen in self.seen):
            self._track(item, getattr(item, "version", None))
        return item

    def _rows(self) -> list[T]:
        """Untracked copies of every row (what a SQL query loaded with ``mapper.load``
        hands out: changing them writes nothing)."""
        self._inside()
        return [copy.deepcopy(item) for item in self.rows.values()]

    def changed(self) -> list[T]:
        """What commit writes back: the rows this unit of work added, and the aggregates
        and read models it changed (a new version)."""
        return [
            item
            for item in self.seen
            if self.loaded_versions[id(item)] is None
            or getattr(item, "version", None) != self.loaded_versions[id(item)]
        ]

    def conflicts(self) -> Iterable[str]:
        """Keys whose committed row moved on since this unit of work read or added it,
        or that another unit of work committed with the same unique values meanwhile."""
        committed = self._store.table(self.table)
        for item in self.changed():
            key = getattr(item, self.key)
            loaded = self.loaded_versions[id(item)]
            stored = committed.get(key)
            if loaded is None:
                if stored is not None or any(self._duplicates(item, committed)):
                    yield key
            elif stored is None or stored.version != loaded:
                yield key


class FakeUnitOfWork:
    """``FakeUnitOfWork(orders=InMemoryOrders)``: one repository attribute per keyword,
    or a service's subclass that names its ``repositories`` once.

    Units of work made with :meth:`sibling` or :meth:`handling` share the store, as the
    SQL ones share the database.
    """

    repositories: ClassVar[dict[str, type[InMemoryRepository[Any]]]] = {}
    """The repositories a service's unit of work opens, by attribute name."""
    store_type: ClassVar[type[MemoryStore]] = MemoryStore

    def __init__(
        self,
        store: MemoryStore | None = None,
        causation: Causation | None = None,
        on_commit: Iterable[Callable[[], None]] = (),
        **repositories: type[InMemoryRepository[Any]],
    ) -> None:
        self.store = store or self.store_type()
        self.causation = causation
        self._on_commit = tuple(on_commit)
        self._after_commit: list[Callable[[], None]] = []
        self._repository_types = repositories or dict(self.repositories)
        self._working: dict[str, dict[str, Any]] | None = None
        self._opened: list[InMemoryRepository[Any]] = []
        self._show_committed()

    @property
    def published(self) -> list[DomainEvent]:
        """The events the committed units of work wrote to the outbox, oldest first."""
        return self.store.events

    @property
    def commits(self) -> int:
        return self.store.commits

    def _show_committed(self) -> None:
        """Outside a unit of work, each repository attribute holds the committed rows."""
        for name, repository_type in self._repository_types.items():
            setattr(
                self, name, repository_type(self.store.table(repository_type.table), self.store)
            )

    def sibling(self) -> Self:
        """Another unit of work on the same store (what a factory hands out)."""
        return type(self)(self.store, None, self._on_commit, **self._repository_types)

    def handling(self, causation: Causation) -> Self:
        """A unit of work on the same store, bound to an incoming event."""
        return type(self)(self.store, causation, self._on_commit, **self._repository_types)

    async def __aenter__(self) -> Self:
        if self.causation is not None and self._handled(self.causation):
            raise AlreadyHandled(self.causation.event_id)
        self._working = copy.deepcopy(self.store.tables)
        self._opened = []
        for name, repository_type in self._repository_types.items():
            rows = self._working.setdefault(repository_type.table, {})
            repository = repository_type(rows, self.store, self._working)
            setattr(self, name, repository)
            self._opened.append(repository)
        return self

    def _handled(self, causation: Causation) -> bool:
        return (causation.consumer, causation.event_id) in self.store.processed

    async def commit(self) -> None:
        assert self._working is not None, "commit outside 'async with'"
        if self.causation is not None and self._handled(self.causation):
            raise AlreadyHandled(self.causation.event_id)
        for repository in self._opened:
            for key in repository.conflicts():
                raise ConcurrencyConflict(f"{repository.table} {key} changed concurrently")
        causation_id = self.causation.event_id if self.causation else ""
        for repository in self._opened:
            table = self.store.table(repository.table)
            for item in repository.seen:
                if isinstance(item, Aggregate):
                    self.store.outbox.extend(
                        OutboxEntry(event, item.version, causation_id) for event in item.events
                    )
                    item.events.clear()
            for item in repository.changed():
                table[getattr(item, repository.key)] = copy.deepcopy(item)
        if self.causation is not None:
            self.store.processed.add((self.causation.consumer, self.causation.event_id))
        self.store.commits += 1
        self._working = None
        for callback in (*self._on_commit, *self._after_commit):
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after this unit of work commits."""
        self._after_commit.append(callback)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for repository in self._opened:
            # a repository kept past the block refuses queries, as on a closed connection
            repository._working = None
        self._working = None
        self._opened = []
        self._show_committed()

    def committed(self, table: str, key: str) -> Any:
        """The committed row of ``table`` with ``key`` (KeyError when there is none)."""
        return self.store.tables[table][key]
