"""``ptctl rebuild-views`` against a real nats-server and real SQLite and PostgreSQL:
the rebuilt views and notifications equal what the live consumer produced, also when
events keep flowing (and the live consumer keeps writing) during the rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ptctl import cli
from ptctl.rebuild import rebuild
from ptkit.archive import ArchiveSettings
from ptkit.mapping import as_utc
from ptkit.messaging import EventConsumer, JetStream, PolicyHandler, bind
from ptplatform.events.v1 import events_pb2
from status_svc.adapters import sql
from status_svc.application.bell import NotificationBell
from status_svc.application.policies import POLICIES
from status_svc.application.rebuild import CONSUMER
from status_svc.domain.events import ObservedEvent
from tests.conftest import NatsServer
from tests.helpers import database, eventually
from tests.status.flows import OrderFlow, envelope_of, subject_of

pytestmark = pytest.mark.timeout(60)


def booking(index: int, clock: Iterator[int]) -> list[ObservedEvent]:
    """One order's events: placed, assigned, confirmed, completed or cancelled."""
    trainer = ("t-kim", "t-lee")[index % 2]
    flow = OrderFlow(customer_id=f"c-{index % 4}", clock=clock).placed()
    step = index % 5
    if step >= 1:
        flow.assigned(trainer).schedule_requested()
    if step == 2:
        flow.schedule_confirmed(trainer).order_confirmed()
    if step == 3:
        flow.schedule_confirmed(trainer).order_confirmed().result(trainer).order_completed()
    if step == 4:
        flow.order_cancelled().assignment_cancelled(trainer).schedule_cancelled(trainer)
    return flow.events


@dataclass
class LiveStatus:
    """status_svc's consumer on a migrated database, as the service runs it."""

    engine: AsyncEngine
    consumer: str

    async def handled(self) -> int:
        marks = sql.messaging.processed_events
        query = select(func.count()).select_from(marks).where(marks.c.consumer == self.consumer)
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar_one()

    async def has_handled(self, events: int) -> bool:
        return await self.handled() == events

    async def snapshot(self, with_sequence: bool = True) -> dict[str, Any]:
        views = sql.order_status_views
        notes = sql.notifications
        note_columns = [c for c in notes.c if with_sequence or c.name != "seq"]
        async with self.engine.connect() as connection:
            view_rows = (await connection.execute(select(views).order_by(views.c.order_id))).all()
            note_rows = (
                await connection.execute(select(*note_columns).order_by(notes.c.notification_id))
            ).all()
        # ``version`` counts the changes a consumer made, not what the view says
        return {
            "views": [
                {k: _utc(v) for k, v in r._mapping.items() if k != "version"} for r in view_rows
            ],
            "notifications": [tuple(_utc(v) for v in r) for r in note_rows],
        }


@contextlib.asynccontextmanager
async def live_status(
    jetstream: JetStream, database_url: str, consumer: str = CONSUMER
) -> AsyncIterator[LiveStatus]:
    async with database(database_url, sql.metadata) as engine:

        def new_uow() -> sql.SqlStatusUnitOfWork:
            return sql.SqlStatusUnitOfWork(engine, sql.messaging, None)

        handler = PolicyHandler(consumer, bind(POLICIES, bell=NotificationBell()), new_uow)
        task = asyncio.create_task(
            EventConsumer(jetstream, handler.durable, handler.subjects, handler).run()
        )
        try:
            yield LiveStatus(engine, consumer)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def publish(jetstream: JetStream, events: list[ObservedEvent]) -> None:
    for event in events:
        await jetstream.publish(
            subject_of(event), envelope_of(event).SerializeToString(), event.event_id
        )


@pytest.fixture
async def jetstream(nats_server: NatsServer) -> AsyncIterator[JetStream]:
    connection = JetStream(nats_server.url, name="test")
    await connection.connect()
    try:
        yield connection
    finally:
        await connection.close()


async def archived(jetstream: JetStream, events: int) -> bool:
    return (await jetstream.js.stream_info(ArchiveSettings().name)).state.messages == events


async def test_rebuilt_views_equal_the_live_ones_from_the_archive_alone(
    jetstream: JetStream, nats_server: NatsServer, database_url: str
) -> None:
    clock = count()
    events = [event for index in range(36) for event in booking(index, clock)]
    async with live_status(jetstream, database_url) as live:
        await publish(jetstream, events)
        await eventually(partial(live.has_handled, len(events)), what="live views")
        await eventually(partial(archived, jetstream, len(events)), what="archive")
        before = await live.snapshot()
        # the stream forgets (max age): only the archive still has the whole history
        await jetstream.js.purge_stream("PT_EVENTS")

        summary = await rebuild(database_url, nats_server.url)

        assert summary.events == len(events)
        assert (summary.views, summary.notifications) == (36, 7)
        assert await live.snapshot() == before
        assert await live.handled() == len(events)
        # the live consumer goes on on the swapped-in tables, once per event
        more = booking(3, clock)
        await publish(jetstream, more)
        await eventually(partial(live.has_handled, len(events) + len(more)))


LOAD_BOOKINGS = 150


async def test_events_flowing_during_the_rebuild_are_not_lost(
    jetstream: JetStream, nats_server: NatsServer, database_url: str, tmp_path: Path
) -> None:
    clock = count()
    published = [event for index in range(20) for event in booking(index, clock)]
    async with (
        live_status(jetstream, database_url) as live,
        live_status(jetstream, f"sqlite:///{tmp_path / 'reference.db'}", "reference") as reference,
    ):
        await publish(jetstream, published)
        await eventually(partial(live.has_handled, len(published)), what="live views")
        rebuilding = asyncio.create_task(rebuild(database_url, nats_server.url))
        index = 20
        # before, during and after the swap; bounded, so a slow machine is not flooded
        while (not rebuilding.done() and index < LOAD_BOOKINGS) or index < 40:
            events = booking(index, clock)
            await publish(jetstream, events)
            published += events
            index += 1
            await asyncio.sleep(0.02)  # a steady load, not a flood
        summary = await rebuilding
        assert summary.events >= 20

        for status in (live, reference):
            await eventually(partial(status.has_handled, len(published)), timeout=30)
        assert await live.snapshot(with_sequence=False) == await reference.snapshot(
            with_sequence=False
        )


def _utc(value: Any) -> Any:
    """Datetimes as aware UTC (SQLite hands them back naive)."""
    return as_utc(value) if isinstance(value, datetime) else value


async def test_a_history_missing_what_the_live_views_hold_is_refused_and_they_are_kept(
    jetstream: JetStream,
    nats_server: NatsServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = [event for index in range(5) for event in booking(index, count())]
    async with live_status(jetstream, database_url) as live:
        await publish(jetstream, events)
        await eventually(partial(live.has_handled, len(events)), what="live views")
        lost = str(uuid.uuid4())  # handled by the live consumer, gone from every stream
        async with live.engine.begin() as connection:
            await connection.execute(
                insert(sql.messaging.processed_events).values(
                    consumer=CONSUMER, event_id=lost, handled_at=datetime.now(UTC)
                )
            )
        before = await live.snapshot()
        argv = ["rebuild-views", "--database-url", database_url, "--nats-url", nats_server.url]

        code = await asyncio.to_thread(cli.main, argv)

        assert code == 1
        assert "rebuild refused" in capsys.readouterr().err
        assert await live.snapshot() == before
        assert await live.handled() == len(events) + 1


async def test_a_rebuild_restores_what_the_live_consumer_lost(
    jetstream: JetStream, nats_server: NatsServer, database_url: str
) -> None:
    clock = count()
    events = [event for index in range(10) for event in booking(index, clock)]
    lost = booking(3, clock)  # a held class: its view and its notification
    async with live_status(jetstream, database_url) as live:
        await publish(jetstream, events + lost)
        await eventually(partial(live.has_handled, len(events) + len(lost)), what="live views")
        expected = await live.snapshot(with_sequence=False)
        marks, notes = sql.messaging.processed_events, sql.notifications
        async with live.engine.begin() as connection:  # as if they had never been applied
            await connection.execute(
                delete(marks).where(marks.c.event_id.in_([e.event_id for e in lost]))
            )
            order_id = lost[0].order_id
            await connection.execute(delete(notes).where(notes.c.order_id == order_id))
            views = sql.order_status_views
            await connection.execute(delete(views).where(views.c.order_id == order_id))
            newest = (await connection.execute(select(func.max(notes.c.seq)))).scalar_one()

        await rebuild(database_url, nats_server.url)

        assert await live.snapshot(with_sequence=False) == expected
        async with live.engine.connect() as connection:
            restored = await connection.scalar(
                select(notes.c.seq).where(notes.c.order_id == order_id)
            )
        assert restored == newest + 1  # a resuming watcher gets it as new


async def test_an_event_whose_policy_fails_is_left_out_and_reported(
    jetstream: JetStream, nats_server: NatsServer, database_url: str
) -> None:
    """A poison event (the live consumer dead-letters it) does not stop a rebuild: the
    rebuild leaves it out, as the live views do, and names it."""
    clock = count()
    events = [event for index in range(3) for event in booking(index, clock)]
    poison = events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type="OrderPlaced",
        order_id=str(uuid.uuid4()),
        source="order",
    )  # no payload: its policy cannot read it
    async with live_status(jetstream, database_url) as live:
        await publish(jetstream, events)
        await jetstream.publish("pt.order.OrderPlaced", poison.SerializeToString(), poison.event_id)
        await eventually(partial(live.has_handled, len(events)), what="live views")
        await eventually(partial(archived, jetstream, len(events) + 1), what="archive")
        before = await live.snapshot()

        summary = await rebuild(database_url, nats_server.url)

        assert summary.failed == (poison.event_id,)
        assert summary.events == len(events)
        assert await live.snapshot() == before
