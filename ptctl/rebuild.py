"""``ptctl rebuild-views``: rebuild status_svc's views and notifications from the event
archive and swap them in while the live views keep serving (docs/resilience.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from ptctl.bus import connected
from ptkit.archive import ArchiveSettings, origin_sequence
from ptkit.events import STREAM_SUBJECTS
from ptplatform.events.v1 import events_pb2
from status_svc.adapters.rebuild_sql import rebuild_store
from status_svc.application.rebuild import RebuildSummary, RecordedEvent, rebuild_views

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 10.0


@dataclass
class JetStreamHistory:
    """The event history on JetStream: the archive, and the domain-event stream for
    the events the archive has not taken yet. Read with ordered (ephemeral) consumers."""

    js: JetStreamContext
    stream: str = "PT_EVENTS"
    archive: str = ArchiveSettings().name

    async def _read(
        self, stream: str, start: int, from_origin: bool
    ) -> AsyncIterator[RecordedEvent]:
        state = (await self.js.stream_info(stream)).state
        tail = state.last_seq
        if state.messages == 0 or tail < max(start, 1):
            return
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        subscription = await self.js.subscribe(
            STREAM_SUBJECTS, stream=stream, ordered_consumer=True, config=config
        )
        try:
            while True:
                message = await subscription.next_msg(timeout=READ_TIMEOUT_SECONDS)
                sequence = message.metadata.sequence.stream
                position = origin_sequence(message.headers) if from_origin else sequence
                try:
                    envelope = events_pb2.EventEnvelope.FromString(message.data)
                except DecodeError:
                    # the live consumer dead-letters it too: it never reaches the views
                    log.warning(
                        "undecodable event skipped", extra={"stream": stream, "seq": sequence}
                    )
                else:
                    yield RecordedEvent(envelope, position)
                if sequence >= tail:
                    return
        finally:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    def archived(self) -> AsyncIterator[RecordedEvent]:
        return self._read(self.archive, 1, from_origin=True)

    def published_after(self, position: int) -> AsyncIterator[RecordedEvent]:
        return self._read(self.stream, position + 1, from_origin=False)


async def rebuild(database_url: str, nats_url: str, stream: str = "PT_EVENTS") -> RebuildSummary:
    """Rebuild status_svc's read model at ``database_url`` from the history on ``nats_url``."""
    store = rebuild_store(database_url)
    try:
        async with connected(nats_url, request_timeout=READ_TIMEOUT_SECONDS) as js:
            summary = await rebuild_views(JetStreamHistory(js, stream), store)
    finally:
        await store.close()
    log.info("views rebuilt", extra={"events": summary.events, "views": summary.views})
    return summary


def run(database_url: str, nats_url: str, stream: str) -> RebuildSummary:
    return asyncio.run(rebuild(database_url, nats_url, stream))
