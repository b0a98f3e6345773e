"""The transactional outbox and its relay against a real nats-server with JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_svc.adapters import sql
from order_svc.application import handlers
from ptkit.auth import Caller, Role
from ptkit.config import Env
from ptkit.events import EnvelopeSerializer
from ptkit.messaging import JetStream
from ptkit.outbox import OutboxRelay
from ptkit.runtime import ServiceRuntime, ServiceSettings
from ptkit.sql import Causation
from ptkit.tokens import KeyFiles
from ptplatform.events.v1 import events_pb2
from tests.conftest import NatsServer
from tests.helpers import database, eventually

STREAM = "PT_EVENTS"
LONG_POLL_SECONDS = 30.0
"""Far longer than any deadline below: an event published in time was not polled for."""
WAKE_DEADLINE_SECONDS = 5.0


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with database(f"sqlite:///{tmp_path / 'order.db'}", sql.metadata) as engine:
        yield engine


@pytest.fixture
async def jetstream(nats_server: NatsServer) -> AsyncIterator[JetStream]:
    jetstream = JetStream(nats_server.url)
    await asyncio.wait_for(jetstream.connect(), 15)
    yield jetstream
    await jetstream.close()


def unit_of_work(engine: AsyncEngine, relay: OutboxRelay | None = None) -> sql.SqlOrderUnitOfWork:
    return sql.SqlOrderUnitOfWork(
        engine, sql.messaging, EnvelopeSerializer("order"), on_commit=[relay.wake] if relay else []
    )


async def stream_messages(url: str) -> list[tuple[str, events_pb2.EventEnvelope]]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        info = await js.stream_info(STREAM)
        messages = []
        if info.state.messages == 0:
            return messages
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg(STREAM, seq)
            messages.append((raw.subject, events_pb2.EventEnvelope.FromString(raw.data)))
        return messages
    finally:
        await client.close()


async def run_relay(relay: OutboxRelay) -> asyncio.Task[None]:
    return asyncio.create_task(relay.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def place() -> handlers.PlaceOrder:
    return handlers.PlaceOrder(
        "alice", "Alice", "Pilates", None, "", Caller("alice", Role.CUSTOMER)
    )


async def test_each_state_change_is_published_exactly_once(
    engine: AsyncEngine, jetstream: JetStream, nats_server: NatsServer
) -> None:
    relay = OutboxRelay(engine, sql.messaging, jetstream, "order")
    task = await run_relay(relay)
    try:
        order = await handlers.place_order(place(), unit_of_work(engine, relay))
        await handlers.cancel_order(
            handlers.CancelOrder(order.order_id, "ill", Caller("alice", Role.CUSTOMER)),
            unit_of_work(engine, relay),
        )

        async def two_published() -> list:
            messages = await stream_messages(nats_server.url)
            return messages if len(messages) >= 2 else []

        messages = await eventually(two_published, what="two events on the stream")
    finally:
        await stop(task)
    assert [(subject, e.event_type, e.order_id) for subject, e in messages] == [
        ("pt.order.OrderPlaced", "OrderPlaced", order.order_id),
        ("pt.order.OrderCancelled", "OrderCancelled", order.order_id),
    ]
    assert await relay.publish_pending() == 0


async def test_a_restarted_relay_publishes_what_was_committed_while_it_was_down(
    engine: AsyncEngine, jetstream: JetStream, nats_server: NatsServer
) -> None:
    relay = OutboxRelay(engine, sql.messaging, jetstream, "order")
    task = await run_relay(relay)
    await stop(task)  # the relay process dies; commits go on
    placed = [await handlers.place_order(place(), unit_of_work(engine)) for _ in range(3)]
    assert await stream_messages(nats_server.url) == []

    restarted = OutboxRelay(engine, sql.messaging, jetstream, "order")
    task = await run_relay(restarted)
    try:

        async def all_published() -> list:
            messages = await stream_messages(nats_server.url)
            return messages if len(messages) >= 3 else []

        messages = await eventually(all_published, what="pending events published")
    finally:
        await stop(task)
    assert [e.order_id for _, e in messages] == [o.order_id for o in placed]


async def test_a_resend_after_a_crash_before_marking_is_deduplicated(
    engine: AsyncEngine, jetstream: JetStream, nats_server: NatsServer
) -> None:
    relay = OutboxRelay(engine, sql.messaging, jetstream, "order")
    await handlers.place_order(place(), unit_of_work(engine))
    await handlers.place_order(place(), unit_of_work(engine))
    assert await relay.publish_pending() == 2
    # the relay died after publishing but before its "published" mark committed
    async with engine.begin() as connection:
        await connection.execute(update(sql.messaging.outbox).values(published_at=None))
    assert await relay.publish_pending() == 2
    assert len(await stream_messages(nats_server.url)) == 2


async def test_orders_are_placed_while_nats_is_down_and_published_when_it_is_back(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    store = tmp_path / "nats-later"
    store.mkdir()
    server = NatsServer(store)  # not started: NATS is down
    jetstream = JetStream(server.url)
    relay = OutboxRelay(engine, sql.messaging, jetstream, "order", max_backoff_seconds=0.5)
    connect = asyncio.create_task(jetstream.connect())
    task = await run_relay(relay)
    try:
        order = await asyncio.wait_for(
            handlers.place_order(place(), unit_of_work(engine, relay)), 5
        )
        server.start()

        async def published() -> list:
            try:
                return await stream_messages(server.url)
            except Exception:
                return []

        messages = await eventually(
            published, timeout=20, what="event published after NATS came back"
        )
        assert [e.order_id for _, e in messages] == [order.order_id]
    finally:
        await stop(task)
        await stop(connect)
        await jetstream.close()
        server.stop()


@pytest.mark.parametrize("handling_an_event", [False, True], ids=["call", "event"])
async def test_a_commit_wakes_the_relay_so_its_event_does_not_wait_for_the_poll(
    nats_server: NatsServer, keys: KeyFiles, tmp_path: Path, handling_an_event: bool
) -> None:
    """Wired as order_svc's main.py wires it: units of work from the runtime's factory,
    for a gRPC call or bound to an incoming event (``handling``, as consumers use them)."""
    env = Env(
        {
            "PT_ORDER_DATABASE_URL": f"sqlite:///{tmp_path / 'order.db'}",
            "PT_NATS_URL": nats_server.url,
            "PT_JWT_PUBLIC_KEY_FILE": str(keys.public_key),
        }
    )
    # A source of its own, so that the relay's backlog gauge says when its first pass is done.
    source = f"wake{uuid.uuid4().hex[:8]}"
    runtime = ServiceRuntime(
        ServiceSettings.from_env("order", 0, env), sql.metadata, sql.messaging, source
    )
    runtime.relay.poll_seconds = LONG_POLL_SECONDS
    new_uow = runtime.unit_of_work_factory(sql.SqlOrderUnitOfWork)
    await runtime.create_schema()
    await asyncio.wait_for(runtime.jetstream.connect(), 15)
    task = await run_relay(runtime.relay)
    try:

        async def relay_idle() -> bool:
            # Set at the end of a pass that found nothing; the relay then waits for a wake-up
            # or the poll, without yielding in between.
            return REGISTRY.get_sample_value("pt_outbox_backlog", {"source": source}) == 0

        await eventually(relay_idle, what="the relay's first (empty) pass done")
        uow = new_uow()
        if handling_an_event:
            uow = uow.handling(Causation("wake_test", str(uuid.uuid4())))
        order = await handlers.place_order(place(), uow)

        async def published() -> list:
            return await stream_messages(nats_server.url)

        messages = await eventually(
            published,
            timeout=WAKE_DEADLINE_SECONDS,
            what=f"the event published well before the {LONG_POLL_SECONDS:.0f} s poll",
        )
    finally:
        await stop(task)
        await runtime.jetstream.close()
        await runtime.engine.dispose()
    assert [(subject, e.order_id) for subject, e in messages] == [
        (f"pt.{source}.OrderPlaced", order.order_id)
    ]


async def test_the_relay_keeps_retrying_after_a_failed_publish(
    engine: AsyncEngine, nats_server: NatsServer
) -> None:
    source = f"retry{uuid.uuid4().hex[:8]}"
    order = await handlers.place_order(place(), unit_of_work(engine))
    jetstream = JetStream(nats_server.url)  # not connected yet: publishing fails
    relay = OutboxRelay(engine, sql.messaging, jetstream, source, max_backoff_seconds=0.5)
    task = await run_relay(relay)
    try:

        async def failed_once() -> bool:
            # Reported just before the relay finds NATS not connected and backs off.
            return REGISTRY.get_sample_value("pt_outbox_backlog", {"source": source}) == 1

        await eventually(failed_once, what="the relay failing to publish")
        await asyncio.wait_for(jetstream.connect(), 15)

        async def published() -> list:
            return await stream_messages(nats_server.url)

        messages = await eventually(published, what="the event published on a later attempt")
    finally:
        await stop(task)
        await jetstream.close()
    assert [e.order_id for _, e in messages] == [order.order_id]


class PausedAfterReading(OutboxRelay):
    """A relay whose first pass, once it has read the (empty) outbox, waits for ``go``:
    a commit can be made exactly while a pass is running."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reading_done = asyncio.Event()
        self.go = asyncio.Event()

    async def publish_pending(self) -> int:
        published = await super().publish_pending()
        if not self.reading_done.is_set():
            self.reading_done.set()
            await self.go.wait()
        return published


async def test_a_commit_during_a_pass_is_published_without_waiting_for_the_poll(
    engine: AsyncEngine, jetstream: JetStream, nats_server: NatsServer
) -> None:
    relay = PausedAfterReading(
        engine, sql.messaging, jetstream, "order", poll_seconds=LONG_POLL_SECONDS
    )
    task = await run_relay(relay)
    try:
        await asyncio.wait_for(relay.reading_done.wait(), 15)
        order = await handlers.place_order(place(), unit_of_work(engine, relay))
        relay.go.set()

        async def published() -> list:
            return await stream_messages(nats_server.url)

        messages = await eventually(
            published,
            timeout=WAKE_DEADLINE_SECONDS,
            what=f"a mid-pass commit published before the {LONG_POLL_SECONDS:.0f} s poll",
        )
    finally:
        await stop(task)
    assert [e.order_id for _, e in messages] == [order.order_id]
