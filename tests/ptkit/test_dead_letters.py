"""Nothing is dropped without a record, against a real nats-server with order_svc's real
policy table on SQLite: the server never gives up, a crash is no failure, a message that
kills its consumer is isolated and alone dead-lettered, a stopped consumer hands its
messages back at once, and a redrive applies exactly once.

A "kill" is simulated in-process: :class:`Killed` (a BaseException, like SystemExit)
escapes the consumer, whose connection is then closed without any ack or nak, as a dead
process's would be; a fresh consumer on a fresh connection is the restarted process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy.ext.asyncio import AsyncEngine

from ptctl.dlq import dead_letters, redrive
from ptkit import dead_letters as dl
from ptkit.messaging import ConsumerSettings, EventConsumer, JetStream
from ptplatform.events.v1 import events_pb2
from tests.conftest import NatsServer
from tests.helpers import eventually
from tests.ptkit.test_consumer import (
    DURABLE,
    RecordingHandler,
    all_acked,
    connected,
    consumer_info,
    counter,
    engine,
    order_consumer,
    orders_confirmed,
    place_orders,
    processed_events,
    publish,
    publisher,
    running,
    schedule_confirmed,
)

__all__ = ["engine", "publisher"]  # the fixtures of the consumer tests

CRASH_SETTINGS = ConsumerSettings(
    ack_wait_seconds=1, batch=8, backoff_seconds=(0.05,), suspect_after=3, max_crashes=2
)


class Killed(BaseException):
    """The process died (os._exit): nothing runs after it, no ack, no nak."""


class KillingHandler(RecordingHandler):
    """order_svc's handler that kills its process when it handles one event."""

    def __init__(self, engine: AsyncEngine, killer: str) -> None:
        super().__init__(engine)
        self.killer = killer

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        if envelope.event_id == self.killer:
            raise Killed
        await super().__call__(envelope)


class KilledAfterFetch(EventConsumer):
    """Dies right after each of its fetches returns messages, before any handler starts."""

    async def _fetch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        messages = await super()._fetch(subscription)
        if messages:
            raise Killed
        return messages


async def run_until_killed(
    nats_url: str,
    make: Callable[[JetStream], EventConsumer],
    settled: Callable[[], Awaitable[object]],
) -> bool:
    """One process life: a consumer on its own connection until it is killed (True) or
    ``settled`` holds; a killed process's connection closes without a goodbye."""
    async with connected(nats_url) as jetstream:
        task = asyncio.create_task(make(jetstream).run())
        watcher = asyncio.create_task(eventually(settled, timeout=20, what="settled"))
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        for running_task in (task, watcher):
            running_task.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)
        if not task.cancelled():
            assert isinstance(task.exception(), Killed), task.exception()
            return True
        watcher.result()  # settled, or the AssertionError of a timeout
        return False


async def never_settled() -> bool:
    return False


async def test_an_existing_durable_with_a_max_deliver_is_updated_to_never_give_up(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    await publisher.js.add_consumer(
        publisher.stream.name,
        ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, max_deliver=8),
    )
    async with running(order_consumer(publisher, engine)):

        async def unlimited() -> bool:
            info = await consumer_info(publisher)
            return info is not None and info.config.max_deliver == -1

        await eventually(unlimited, what="the durable's max_deliver updated to -1")


async def test_a_transient_error_is_never_dead_lettered_however_often_it_fails(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    [order_id] = await place_orders(engine, 1)

    class DependencyDown(Exception):
        pass

    calls: list[str] = []
    real = RecordingHandler(engine)

    async def flaky(envelope: events_pb2.EventEnvelope) -> None:
        calls.append(envelope.event_id)
        if len(calls) <= 6:
            raise DependencyDown
        await real(envelope)

    settings = replace(CRASH_SETTINGS, max_failures=2, transient=(DependencyDown,))
    dead = counter("pt_events_dead_lettered_total")
    event = schedule_confirmed(order_id)
    async with running(order_consumer(publisher, engine, settings, flaky)):
        await publish(publisher, event)
        await eventually(lambda: processed_events(engine), what="handled after 6 failures")
        await eventually(lambda: all_acked(publisher, 1), what="the event acked")
    assert calls == [event.event_id] * 7
    assert counter("pt_events_dead_lettered_total") == dead
    assert await dead_letters(publisher.js) == []


async def test_kills_right_after_each_fetch_count_against_no_message(
    engine: AsyncEngine, publisher: JetStream, nats_server: NatsServer
) -> None:
    order_ids = await place_orders(engine, 4)
    for order_id in order_ids:
        await publish(publisher, schedule_confirmed(order_id))
    kills = 0
    while kills < 8:  # more than suspect_after + max_crashes
        assert await run_until_killed(
            nats_server.url,
            lambda js: KilledAfterFetch(
                js, DURABLE, ["pt.trainer.>"], RecordingHandler(engine), CRASH_SETTINGS
            ),
            never_settled,
        )
        kills += 1
    info = await consumer_info(publisher)
    assert info is not None and info.num_redelivered >= 4
    handler = RecordingHandler(engine)

    async def all_handled() -> bool:
        return len(handler.handled) == 4

    assert not await run_until_killed(
        nats_server.url,
        lambda js: order_consumer(js, engine, CRASH_SETTINGS, handler),
        all_handled,
    )
    assert await dead_letters(publisher.js) == []
    assert await orders_confirmed(engine) == 4


async def test_a_message_that_kills_its_consumer_is_isolated_and_alone_dead_lettered(
    engine: AsyncEngine, publisher: JetStream, nats_server: NatsServer
) -> None:
    killer_order, *order_ids = await place_orders(engine, 5)
    killer = schedule_confirmed(killer_order)
    goods = [schedule_confirmed(order_id) for order_id in order_ids]
    for event in [killer, *goods]:  # the killer first: it kills every batch it is in
        await publish(publisher, event)
    handled: list[str] = []
    lives = 0

    async def settled() -> bool:
        return len(set(handled)) == len(goods) and bool(await all_acked(publisher, 5))

    def make(js: JetStream) -> EventConsumer:
        handler = KillingHandler(engine, killer.event_id)
        handler.handled = handled
        return order_consumer(js, engine, CRASH_SETTINGS, handler)

    while await run_until_killed(nats_server.url, make, settled):
        lives += 1
        assert lives <= 8, "the killer is dead-lettered after a bounded number of crashes"

    assert sorted(handled) == sorted(e.event_id for e in goods), "each good event once"
    [letter] = await dead_letters(publisher.js)
    assert letter.headers[dl.EVENT_ID] == killer.event_id
    assert letter.headers[dl.CRASHES] == str(CRASH_SETTINGS.max_crashes)
    assert "killed its consumer 2 times" in letter.headers[dl.ERROR]
    assert await orders_confirmed(engine) == 4


async def test_a_stopped_consumer_hands_its_fetched_messages_back_at_once(
    engine: AsyncEngine, publisher: JetStream, nats_server: NatsServer
) -> None:
    order_ids = await place_orders(engine, 3)
    events = [schedule_confirmed(order_id) for order_id in order_ids]
    slow = ConsumerSettings(ack_wait_seconds=30, batch=8)
    in_handler, never = asyncio.Event(), asyncio.Event()

    async def stuck(envelope: events_pb2.EventEnvelope) -> None:
        in_handler.set()
        await never.wait()

    other = RecordingHandler(engine)
    for event in events:  # published first: the stopping replica fetches all three at once
        await publish(publisher, event)
    async with connected(nats_server.url) as nats_a, connected(nats_server.url) as nats_b:
        stopping = asyncio.create_task(order_consumer(nats_a, engine, slow, stuck).run())
        await asyncio.wait_for(in_handler.wait(), 15)
        info = await consumer_info(publisher)
        assert info is not None and info.num_ack_pending == 3, "all three fetched at once"
        async with running(order_consumer(nats_b, engine, slow, other)):
            stopped_at = time.monotonic()
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)

            async def all_handled() -> bool:
                return len(other.handled) == 3

            await eventually(all_handled, timeout=10, what="the other replica took all three")
            taken_after = time.monotonic() - stopped_at

    assert taken_after < slow.ack_wait_seconds / 3, f"waited {taken_after:.1f}s"
    assert sorted(other.handled) == sorted(e.event_id for e in events)


async def test_a_redriven_dead_letter_applies_exactly_once_to_its_consumer_only(
    engine: AsyncEngine, publisher: JetStream
) -> None:
    [order_id] = await place_orders(engine, 1)
    event = schedule_confirmed(order_id)
    broken = True
    real = RecordingHandler(engine)

    async def until_fixed(envelope: events_pb2.EventEnvelope) -> None:
        if broken:
            raise RuntimeError("a bug")
        await real(envelope)

    settings = replace(CRASH_SETTINGS, ack_wait_seconds=5, max_failures=2, suspect_after=10)
    consumer = order_consumer(publisher, engine, settings, until_fixed)
    duplicates = counter("pt_events_duplicate_total")
    async with running(consumer, consumer.redrive_consumer()):
        await publish(publisher, event)
        [letter] = await eventually(lambda: dead_letters(publisher.js), what="dead-lettered")
        broken = False
        await redrive(publisher.js, letter)
        await eventually(lambda: processed_events(engine), what="the redriven event handled")
        assert await dead_letters(publisher.js) == [], "a redriven dead letter is deleted"
        # the same envelope handed back again (a second dead letter of the same event)
        await publisher.js.publish(
            dl.redrive_subject(DURABLE), letter.data, headers={"Nats-Msg-Id": "another"}
        )

        async def duplicate_seen() -> bool:
            return counter("pt_events_duplicate_total") - duplicates >= 1

        await eventually(duplicate_seen, what="the second redrive seen as a duplicate")

    assert real.handled == [event.event_id]
    assert await processed_events(engine) == [event.event_id]
    assert await orders_confirmed(engine) == 1
    redriven = await publisher.js.stream_info(dl.REDRIVE_STREAM)
    assert redriven.state.messages == 2
