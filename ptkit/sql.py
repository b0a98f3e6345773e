"""SQLAlchemy plumbing every service shares: engine, outbox and processed-events
tables, and the unit of work that commits state, outbox rows and the handled-event
mark in one transaction."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    event,
    insert,
)
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)
from sqlalchemy.sql.dml import Insert

from ptkit.domain import Aggregate, ConcurrencyConflict, DomainEvent, Versioned
from ptkit.mapping import AggregateMapper
from ptkit.sqlite import inline_creator
from ptkit.tls import postgres_ssl

log = logging.getLogger(__name__)


def async_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the asyncio driver."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}.get(
        parsed.drivername, parsed.drivername
    )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite runs on the loop's thread (:mod:`ptkit.sqlite`) with WAL, a
    busy timeout and write-ahead ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock when a transaction starts, so two
    concurrent read-modify-write transactions queue instead of failing on lock upgrade.
    """
    url = async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        parsed, connect_args = postgres_ssl(parsed)
        engine = create_async_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        return _with_plain_savepoints(engine)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # One connection: SQLite takes one writer at a time anyway, and queueing in-process is
    # fair and fast where SQLite's busy handler would sleep and retry.
    engine = create_async_engine(
        url,
        async_creator=inline_creator(parsed.database or ":memory:", busy_timeout=30),
        pool_size=1,
        max_overflow=0,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a process crash; only an OS crash or power loss
        # may undo the last commits (never corrupting). PostgreSQL is the production store.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return _with_plain_savepoints(engine)


def _with_plain_savepoints(engine: AsyncEngine) -> AsyncEngine:
    """Savepoints sent as plain SQL. SQLAlchemy compiles a SAVEPOINT clause for each one,
    and as each savepoint has a new name (``sa_savepoint_<n>``, its own) the compiled
    cache never holds it: a consumer's batch, one savepoint per event, spent more on
    compiling those clauses than on its events."""
    dialect = engine.sync_engine.dialect

    def savepoint(connection: Connection, name: str) -> None:
        connection.exec_driver_sql(f"SAVEPOINT {name}")

    def rollback_to(connection: Connection, name: str) -> None:
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")

    def release(connection: Connection, name: str) -> None:
        connection.exec_driver_sql(f"RELEASE SAVEPOINT {name}")

    dialect.do_savepoint = savepoint  # type: ignore[method-assign]
    dialect.do_rollback_to_savepoint = rollback_to  # type: ignore[method-assign]
    dialect.do_release_savepoint = release  # type: ignore[method-assign]
    return engine


@dataclass(frozen=True)
class MessagingTables:
    """The outbox and processed-events tables, added to a service's own metadata.

    A service that publishes nothing (status_svc's read model) has no outbox.
    """

    outbox: Table | None
    processed_events: Table

    @functools.cached_property
    def mark_handled(self) -> Insert:
        """The processed-event mark's ``INSERT``, built once."""
        return insert(self.processed_events)

    @functools.cached_property
    def append_outbox(self) -> Insert:
        """The outbox rows' ``INSERT``, built once."""
        assert self.outbox is not None, "a service without an outbox appends none"
        return insert(self.outbox)

    @classmethod
    def add_to(cls, metadata: MetaData, *, outbox: bool = True) -> MessagingTables:
        processed = Table(
            "processed_events",
            metadata,
            Column("consumer", String(64), nullable=False),
            Column("event_id", String(36), nullable=False),
            Column("handled_at", DateTime(timezone=True), nullable=False),
            PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
        )
        if not outbox:
            return cls(outbox=None, processed_events=processed)
        outbox_table = Table(
            "outbox",
            metadata,
            Column("seq", Integer, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("event_type", String(64), nullable=False),
            Column("subject", String(200), nullable=False),
            Column("payload", LargeBinary, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("published_at", DateTime(timezone=True), nullable=True),
            Index("ix_outbox_unpublished", "published_at", "seq"),
        )
        return cls(outbox=outbox_table, processed_events=processed)


@dataclass(frozen=True)
class OutboxMessage:
    event_id: str
    event_type: str
    subject: str
    payload: bytes


class EventSerializer(Protocol):
    """Turns a domain event into the message the relay will publish."""

    def __call__(
        self, event: DomainEvent, aggregate_version: int, causation_id: str
    ) -> OutboxMessage: ...


@dataclass(frozen=True)
class Causation:
    """The event being handled, when a unit of work runs for a consumer."""

    consumer: str
    event_id: str


class AlreadyHandled(Exception):
    """This consumer already committed the effect of this event (a redelivery)."""


class TrackingRepository:
    """Base of SQL repositories: remembers the aggregates it handed out, so the unit of
    work can collect their events and write back the changed ones.

    Subclasses name the ``mapper`` of their aggregate (its table, key and columns),
    :meth:`_insert` new aggregates and :meth:`_load` the rows they read. A changed
    aggregate is written only where the stored version is still the one that was read
    (optimistic locking).
    """

    mapper: ClassVar[AggregateMapper[Any]]

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.seen: list[Versioned] = []
        self._loaded_versions: dict[int, int] = {}

    @property
    def table(self) -> Table:
        return self.mapper.table

    def _track(self, aggregate: Versioned) -> None:
        self.seen.append(aggregate)
        self._loaded_versions[id(aggregate)] = aggregate.version

    def _load(self, row: Row[Any]) -> Any:
        """The aggregate of a row, tracked: its changes are written back on commit."""
        aggregate = self.mapper.load(row)
        self._track(aggregate)
        return aggregate

    async def _find(self, key: object) -> Any | None:
        """The tracked aggregate whose key is ``key``, or None."""
        row = (await self.connection.execute(self.mapper.by_key, {"_key": key})).first()
        return None if row is None else self._load(row)

    async def _insert(self, aggregate: Any) -> None:
        """Insert a new aggregate. A row with the same key or unique values written
        meanwhile is a conflict."""
        try:
            await self.connection.execute(self.mapper.insert, self.mapper.values(aggregate))
        except IntegrityError:
            key = getattr(aggregate, self.mapper.key)
            raise ConcurrencyConflict(
                f"{type(aggregate).__name__} {key} was created concurrently; retry the request"
            ) from None
        self._track(aggregate)

    async def _update(self, aggregate: Versioned, expected_version: int) -> int:
        """Write the aggregate WHERE version = expected_version; return the row count."""
        values = self.mapper.values(aggregate)
        values["_key"] = values.pop(self.mapper.key)
        values["_expected"] = expected_version
        result = await self.connection.execute(self.mapper.update, values)
        return result.rowcount

    async def flush(self) -> None:
        for aggregate in self.seen:
            loaded = self._loaded_versions[id(aggregate)]
            if aggregate.version == loaded:
                continue
            if await self._update(aggregate, loaded) != 1:
                raise ConcurrencyConflict(
                    f"{type(aggregate).__name__} changed concurrently; retry the request"
                )
            self._loaded_versions[id(aggregate)] = aggregate.version


class SqlUnitOfWork:
    """One database transaction: ``async with uow: ...; await uow.commit()``.

    On commit it writes every event the tracked aggregates recorded to the outbox and,
    when handling an event, the (consumer, event_id) mark — all in the same transaction.
    Leaving the block without commit rolls everything back.

    ``within`` runs it as a savepoint of a transaction already open on that connection
    (a tool that applies many events under one lock, e.g. status_svc's view rebuild):
    its commit releases the savepoint, and the outer transaction decides.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        tables: MessagingTables,
        serializer: EventSerializer | None,
        causation: Causation | None = None,
        on_commit: Iterable[Callable[[], None]] = (),
        within: AsyncConnection | None = None,
        batch: SqlBatch | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.serializer = serializer
        self.causation = causation
        self._on_commit = tuple(on_commit)
        self._within = within
        self._batch = batch
        self._after_commit: list[Callable[[], None]] = []
        self.connection: AsyncConnection
        self._transaction: AsyncTransaction | None = None

    def handling(self, causation: Causation) -> Self:
        """A new unit of work of the same kind, bound to an incoming event."""
        return type(self)(
            self.engine, self.tables, self.serializer, causation, self._on_commit, self._within
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this unit of work's changes are committed: after its
        commit, or, as part of a batch, after the batch commits (never if it rolls back)."""
        self._after_commit.append(callback)

    def batch(self) -> SqlBatch:
        """One transaction for many events (a consumer's fetched batch): each event's unit
        of work (:meth:`SqlBatch.handling`) is a savepoint of it, and this kind's on_commit
        callbacks run once, after the batch commits."""
        return SqlBatch(self)

    def repositories(self) -> Iterable[TrackingRepository]:
        """Subclasses return the repositories they opened in :meth:`open_repositories`."""
        return ()

    def open_repositories(self, connection: AsyncConnection) -> None:
        """Subclasses create their repositories on the connection here."""

    async def __aenter__(self) -> Self:
        if self._within is not None:
            self.connection = self._within
            self._transaction = await self.connection.begin_nested()
        else:
            self.connection = await self.engine.connect()
            self._transaction = await self.connection.begin()
        self.open_repositories(self.connection)
        if self.causation is not None:
            await self._mark_handled(self.causation)
        return self

    async def _mark_handled(self, causation: Causation) -> None:
        """Insert the processed-event mark first: a second copy of the event (another
        replica, a redelivery) fails on the primary key and changes nothing."""
        try:
            await self.connection.execute(
                self.tables.mark_handled,
                {
                    "consumer": causation.consumer,
                    "event_id": causation.event_id,
                    "handled_at": datetime.now(UTC),
                },
            )
        except IntegrityError:
            await self._close(rollback=True)
            raise AlreadyHandled(causation.event_id) from None

    async def commit(self) -> None:
        causation_id = self.causation.event_id if self.causation else ""
        rows = []
        for repository in self.repositories():
            await repository.flush()
            for aggregate in repository.seen:
                if not isinstance(aggregate, Aggregate):
                    continue  # a read model records no events
                for domain_event in aggregate.events:
                    if self.serializer is None:
                        raise TypeError("events recorded in a service that publishes none")
                    message = self.serializer(domain_event, aggregate.version, causation_id)
                    rows.append(
                        {
                            "event_id": message.event_id,
                            "event_type": message.event_type,
                            "subject": message.subject,
                            "payload": message.payload,
                            "created_at": datetime.now(UTC),
                        }
                    )
                aggregate.events.clear()
        if rows:
            assert self.tables.outbox is not None, "a serializer comes with an outbox"
            await self.connection.execute(self.tables.append_outbox, rows)
        assert self._transaction is not None
        await self._transaction.commit()
        self._transaction = None
        if self._batch is not None:
            self._batch.defer(self._after_commit)
            return
        for callback in (*self._on_commit, *self._after_commit):
            callback()

    async def _close(self, *, rollback: bool) -> None:
        if self._transaction is not None and rollback:
            await self._transaction.rollback()
        self._transaction = None
        if self._within is None:
            await self.connection.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(rollback=True)


class SqlBatch:
    """One transaction on one connection that several units of work share, each as a
    savepoint: ``async with uow.batch() as batch: ... batch.handling(c) ...; await
    batch.commit()``. A unit of work that fails (or finds its event already handled) is
    rolled back to its savepoint only; leaving the block without commit rolls back all."""

    def __init__(self, kind: SqlUnitOfWork) -> None:
        self._kind = kind
        self._deferred: list[Callable[[], None]] = []
        self.connection: AsyncConnection
        self._transaction: AsyncTransaction | None = None

    async def __aenter__(self) -> Self:
        self.connection = await self._kind.engine.connect()
        try:
            self._transaction = await self.connection.begin()
        except BaseException:
            await self.connection.close()
            raise
        return self

    def handling(self, causation: Causation) -> SqlUnitOfWork:
        """A unit of work of the batch's kind for one event, as a savepoint of the batch."""
        kind = self._kind
        return type(kind)(
            kind.engine, kind.tables, kind.serializer, causation, within=self.connection, batch=self
        )

    def defer(self, callbacks: Iterable[Callable[[], None]]) -> None:
        """Callbacks of a unit of work whose savepoint was released: run after the batch
        commits."""
        self._deferred.extend(callbacks)

    @property
    def broken(self) -> bool:
        """The batch can no longer commit what it holds: its transaction is gone, or a unit
        of work left its savepoint open."""
        transaction = self._transaction
        return (
            transaction is None
            or not transaction.is_active
            or self.connection.in_nested_transaction()
        )

    async def commit(self) -> None:
        assert self._transaction is not None, "commit inside the block, once"
        await self._transaction.commit()
        self._transaction = None
        for callback in (*self._kind._on_commit, *self._deferred):
            callback()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._transaction is not None:
                await self._transaction.rollback()
        finally:
            self._transaction = None
            await self.connection.close()
