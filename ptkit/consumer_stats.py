"""What JetStream knows of this process's durables, as gauges: lag (``num_pending``),
messages awaiting an ack, redeliveries, and the dead letters stored for the durable.

Every replica of a service reports the same durable: dashboards take the ``max``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import nats.errors
from nats.js.errors import NotFoundError

from ptkit import metrics
from ptkit.dead_letters import DEAD_LETTER_STREAM, dead_letter_subject
from ptkit.messaging import EventConsumer, JetStream, NotConnected

log = logging.getLogger(__name__)

_UNREACHABLE = (NotConnected, nats.errors.Error, OSError, TimeoutError)


class ConsumerStats:
    def __init__(
        self,
        jetstream: JetStream,
        consumers: Sequence[EventConsumer],
        interval_seconds: float = 5.0,
    ) -> None:
        self.jetstream = jetstream
        self.consumers = consumers
        self.interval_seconds = interval_seconds

    async def run(self) -> None:
        while True:
            await self.jetstream.ready.wait()
            try:
                await self.read()
            except _UNREACHABLE as error:
                log.debug("consumer stats unavailable", extra={"error": repr(error)})
            await asyncio.sleep(self.interval_seconds)

    async def read(self) -> None:
        """Read every durable's consumer info, and its dead letters, once."""
        js = self.jetstream.js
        timeout = self.interval_seconds
        for consumer in self.consumers:
            labels = (consumer.durable, consumer.stream)
            try:
                info = await js.consumer_info(consumer.stream, consumer.durable, timeout=timeout)
            except NotFoundError:  # not provisioned yet: the consumer waits for it too
                continue
            metrics.CONSUMER_PENDING.labels(*labels).set(info.num_pending or 0)
            metrics.CONSUMER_ACK_PENDING.labels(*labels).set(info.num_ack_pending or 0)
            metrics.CONSUMER_REDELIVERED.labels(*labels).set(info.num_redelivered or 0)
        for durable in sorted({c.durable for c in self.consumers}):
            stored = await js.stream_info(
                DEAD_LETTER_STREAM, subjects_filter=dead_letter_subject(durable, ">")
            )
            metrics.DEAD_LETTERS.labels(durable).set(sum((stored.state.subjects or {}).values()))
