"""NATS JetStream: the connection (as the process's own nkey identity), the platform's
streams (provisioned by the admin, only checked by a service), publishing, durable
consumers with explicit ack, nak with backoff, dead letters for what a consumer gives up
on, and the policy tables that turn a service's ``{event type: policy}`` into a
consumer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from ptkit import correlation, metrics
from ptkit.archive import ArchiveSettings, archive_config
from ptkit.dead_letters import (
    DEAD_LETTER_STREAM,
    REDRIVE_STREAM,
    GaveUp,
    dead_letter_subject,
    header_safe,
    redrive_subject,
)
from ptkit.dead_letters import stream_configs as dead_letter_stream_configs
from ptkit.events import (
    STREAM_SUBJECTS,
    check_decodable,
    correlation_of,
    decode_event,
    subject_of,
)
from ptkit.failures import LEDGER_BUCKET, FailureLedger, Tally, open_ledger
from ptkit.ports import UnitOfWork
from ptkit.provenance import rejection
from ptkit.sql import AlreadyHandled, Causation
from ptplatform.events.v1 import events_pb2

if TYPE_CHECKING:
    from ptkit.tracing import Tracing

log = logging.getLogger(__name__)

ARCHIVE_STREAM = ArchiveSettings().name


PING_INTERVAL_SECONDS = 5.0
"""How often a connection pings its server; two unanswered pings and the client moves to
another server of the cluster (nats-py's default, 2 min, would keep a service on a server
cut off from the network for minutes)."""


def servers(url: str) -> list[str]:
    """The server URLs in ``PT_NATS_URL``: one, or several comma-separated (a cluster)."""
    return [part.strip() for part in url.split(",") if part.strip()]


class NotConnected(ConnectionError):
    """NATS is not reachable right now."""


@dataclass(frozen=True)
class StreamSettings:
    name: str = "PT_EVENTS"
    duplicate_window_seconds: float = 120.0
    replicas: int = 1
    max_age_days: float = 30.0
    """How long the stream keeps an event: how long a consumer may be down and still
    catch up, and how long processed-event marks must be kept."""


class StreamsMissing(nats.errors.Error):
    """A stream the platform uses does not exist yet: the admin identity provisions the
    streams (:func:`provision_streams`, run by the launcher or the ``nats-provision``
    Job); a service only waits for them."""


def platform_streams(stream: StreamSettings) -> list[StreamConfig]:
    """Every stream the platform uses: the domain events, their archive, the dead letters
    and the redrives (the failure ledger's bucket is made by :func:`provision_streams`)."""
    max_age = stream.max_age_days * 86400
    events = StreamConfig(
        name=stream.name,
        subjects=[STREAM_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=stream.duplicate_window_seconds,
        num_replicas=stream.replicas,
        max_age=max_age,
    )
    return [
        events,
        archive_config(stream),
        *dead_letter_stream_configs(stream.replicas, max_age),
    ]


async def provision_streams(js: JetStreamContext, stream: StreamSettings) -> None:
    """Create or update (idempotent) every stream and the consumers' failure ledger. Needs
    an identity that may manage streams (the admin); no service has that right."""
    for config in platform_streams(stream):
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    await open_ledger(js, stream.max_age_days * 86400, stream.replicas)


@dataclass(frozen=True)
class NatsIdentity:
    """Who a process is on the bus: its nkey seed file (none: an anonymous client, for a
    server without authorization) and the CA that signs the server's TLS certificate
    (none: the system's trust store, used only for ``tls://`` URLs)."""

    seed_file: Path | None = None
    ca_file: Path | None = None

    def connect_options(self, name: str) -> dict[str, Any]:
        """nats.connect keyword arguments; replies come to ``_INBOX.<name>.>``, the only
        subjects a service's credentials may subscribe to."""
        options: dict[str, Any] = {}
        if name:
            options["inbox_prefix"] = f"_INBOX.{name}"
        if self.seed_file is not None:
            options["nkeys_seed"] = str(self.seed_file)
        if self.ca_file is not None:
            options["tls"] = ssl.create_default_context(cafile=str(self.ca_file))
        return options


class JetStream:
    """One NATS connection per process, opened in the background and kept open.

    A service starts and serves even while NATS is down: the outbox holds events and
    consumers wait until :attr:`ready` is set.
    """

    def __init__(
        self,
        url: str,
        stream: StreamSettings = StreamSettings(),
        name: str = "",
        identity: NatsIdentity = NatsIdentity(),
    ) -> None:
        self.url = url
        self.stream = stream
        self.name = name
        self.identity = identity
        self.ready = asyncio.Event()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        """Connect (retrying forever with jittered backoff) and wait until the streams exist."""
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.2, max=3.0, jitter=0.2),
            retry=retry_if_exception_type((OSError, nats.errors.Error, asyncio.TimeoutError)),
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info("retrying NATS connection", extra={"url": self.url})
                nc = await nats.connect(
                    servers(self.url),
                    name=self.name,
                    ping_interval=PING_INTERVAL_SECONDS,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=_reports_connection(0),
                    reconnected_cb=_reports_connection(1),
                    **self.identity.connect_options(self.name),
                )
                try:
                    js = nc.jetstream(timeout=5)
                    await self._check_streams(js)
                except BaseException:
                    await nc.close()
                    raise
        self._nc, self._js = nc, js
        metrics.NATS_CONNECTED.set(1)
        self.ready.set()
        log.info("connected to NATS", extra={"url": self.url, "stream": self.stream.name})

    async def _check_streams(self, js: JetStreamContext) -> None:
        """The streams this process uses exist (it may not create them)."""
        names = [c.name for c in platform_streams(self.stream) if c.name != ARCHIVE_STREAM]
        for name in [*names, f"KV_{LEDGER_BUCKET}"]:
            try:
                await js.stream_info(name)
            except NotFoundError:
                log.warning(
                    "stream missing, waiting for it to be provisioned",
                    extra={"stream": name, "url": self.url},
                )
                raise StreamsMissing(name) from None

    @property
    def js(self) -> JetStreamContext:
        if self._js is None or self._nc is None or not self._nc.is_connected:
            raise NotConnected(self.url)
        return self._js

    async def publish(
        self, subject: str, payload: bytes, msg_id: str, timeout: float = 2.0
    ) -> bool:
        """Publish with ``Nats-Msg-Id``; returns False when JetStream dropped it as a duplicate."""
        ack = await self.js.publish(
            subject, payload, timeout=timeout, headers={"Nats-Msg-Id": msg_id}
        )
        return not ack.duplicate

    async def flush(self, timeout: float) -> None:
        """Send what is buffered (acks, naks) now."""
        if self._nc is not None and self._nc.is_connected:
            await self._nc.flush(timeout)

    async def close(self) -> None:
        self.ready.clear()
        metrics.NATS_CONNECTED.set(0)
        if self._nc is not None:
            await self._nc.close()
        self._nc = self._js = None


def _reports_connection(connected: int) -> Callable[[], Awaitable[None]]:
    """A nats-py callback that sets ``pt_nats_connected``."""

    async def report() -> None:
        metrics.NATS_CONNECTED.set(connected)

    return report


Handler = Callable[[events_pb2.EventEnvelope], Awaitable[None]]


class HandlerBatch(Protocol):
    """Events applied in one transaction, each in a savepoint of it."""

    async def apply(self, envelope: events_pb2.EventEnvelope) -> None:
        """Apply one event in its own savepoint; raises as the handler would (a failure
        or AlreadyHandled rolls back that savepoint only)."""
        ...

    @property
    def broken(self) -> bool:
        """The transaction can no longer commit what the batch holds."""
        ...

    async def commit(self) -> None: ...


@runtime_checkable
class BatchHandler(Protocol):
    """A handler that can also apply a fetched batch in one transaction."""

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None: ...

    @property
    def batches(self) -> bool:
        """Whether :meth:`batch` is available (its unit of work has batches)."""
        ...

    def runs_alone(self, envelope: events_pb2.EventEnvelope) -> bool:
        """The event must be handled alone, in a transaction of its own."""
        ...

    def batch(self) -> AbstractAsyncContextManager[HandlerBatch]: ...


@dataclass(frozen=True)
class ConsumerSettings:
    max_failures: int = 8
    """Handler failures after which an event is dead-lettered (a crash is no failure)."""
    ack_wait_seconds: float = 30.0
    batch: int = 32
    backoff_seconds: Sequence[float] = field(default=(0.5, 1, 2, 4, 8, 15, 30))
    transient: tuple[type[BaseException], ...] = ()
    """Errors that never count as failures (a dependency is down, e.g. manager_svc's
    ScheduleCancelUnavailable): the event is redelivered with the capped backoff however
    many deliveries it takes."""
    suspect_after: int = 3
    """Deliveries after which a message is a crash suspect and is handled alone."""
    max_crashes: int = 3
    """Attempts of a suspect that killed its process before it is dead-lettered."""

    def delay_after(self, count: int) -> float:
        return self.backoff_seconds[max(1, min(count, len(self.backoff_seconds))) - 1]


def raise_if_cancelled() -> None:
    """Raise a cancellation that was swallowed on the way.

    On Python 3.11 ``asyncio.wait_for`` (which nats-py uses for every request and fetch)
    returns the result instead of raising when a cancellation races the reply; the task
    still counts the request in ``cancelling()``. Without this check a stopped consumer
    could keep fetching forever and hang the service's shutdown.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class ConsumerMissing(nats.errors.Error):
    """A service's durable consumer is not provisioned (or lacks a subject it needs): the
    admin creates the consumers (:func:`provision_consumers`); a service only binds."""


def consumer_config(
    durable: str, subjects: Sequence[str], settings: ConsumerSettings
) -> ConsumerConfig:
    """The durable pull consumer of one service on one stream."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subjects=list(subjects),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=-1,
        max_ack_pending=1000,
    )


def service_consumers(
    durable: str, subjects: Sequence[str], settings: ConsumerSettings, stream: str
) -> list[tuple[str, ConsumerConfig]]:
    """A service's consumers: its events on ``stream`` and its redrives on PT_REDRIVE."""
    return [
        (stream, consumer_config(durable, subjects, settings)),
        (REDRIVE_STREAM, consumer_config(durable, [redrive_subject(durable)], settings)),
    ]


async def provision_consumers(
    js: JetStreamContext, consumers: Sequence[tuple[str, ConsumerConfig]]
) -> None:
    """Create or update (idempotent) the services' durable consumers, as the admin: a
    service's credentials may read through its consumer but not choose what it reads."""
    for stream, config in consumers:
        await js.add_consumer(stream, config)


FETCH_TIMEOUT_SECONDS = 1.0
"""How long one pull waits for the next message (a stop is noticed within it)."""
TOP_UP_SECONDS = 0.1
"""The longest the pull of the messages waiting behind a batch's first one takes."""
RELEASE_TIMEOUT_SECONDS = 2.0
"""How long a stopping consumer waits for an open fetch and for its naks to be sent."""


class EventConsumer:
    """A durable pull consumer shared by all replicas of one service.

    Each message: decode the envelope, run the handler (which commits its effect and the
    processed-event mark in one transaction), then ack.

    A handler with batches (:class:`BatchHandler`, e.g. a :class:`PolicyHandler` on a SQL
    unit of work) gets each run of batchable messages of a fetch in one transaction: every
    event in a savepoint of its own, in stream order (a failed or already handled event
    rolls back its savepoint only), one commit, the relay woken once, then the acks of
    the applied and already handled events and one flush; failed events are counted and
    nak'ed one by one as below. Should the transaction itself fail, the run is handled
    again one event at a time. Not batched: crash suspects, undecodable or refused
    envelopes, and events whose policy :func:`runs_alone` (it calls another service).
    A crash after the commit and before the acks redelivers the run: every event is
    found already handled and acked.

    The server never gives up on a message (``max_deliver=-1``); the consumer does, and
    writes a dead letter first:

    - a handler failure (not a transient error) is counted in the :class:`FailureLedger`
      and nak'ed with backoff; after ``max_failures`` the event is dead-lettered;
    - an undecodable envelope is dead-lettered at once;
    - an envelope whose source, subject and type disagree (ptkit.provenance) is
      terminated, logged and counted, never handled;
    - a message delivered ``suspect_after`` times may be killing its process: it is
      handled alone (its batch-mates are nak'ed at once, the next fetches take one
      message), with an attempt recorded before its handler runs; after ``max_crashes``
      attempts that never finished it is dead-lettered.

    Stopped (cancelled), it naks what it fetched and did not finish, at once, so another
    replica takes it without waiting out the ack wait.

    ``create=False`` (a service): the durable is the admin's (:func:`provision_consumers`);
    the consumer binds to it and waits while it is missing or lacks one of ``subjects``.
    """

    def __init__(
        self,
        jetstream: JetStream,
        durable: str,
        subjects: Sequence[str],
        handler: Handler,
        settings: ConsumerSettings = ConsumerSettings(),
        stream: str | None = None,
        create: bool = True,
    ) -> None:
        self.jetstream = jetstream
        self.durable = durable
        self.subjects = list(subjects)
        self.handler = handler
        self.settings = settings
        self.stream = stream or jetstream.stream.name
        self.create = create
        """False: the consumer is provisioned by the admin; this one only binds to it."""
        self._ledger: FailureLedger | None = None
        self._alone = False

    def redrive_consumer(self) -> EventConsumer:
        """The same durable and handler on the redrive stream: the dead letters an
        operator hands back to this consumer (and no other) with ``ptctl dlq redrive``."""
        return EventConsumer(
            self.jetstream,
            self.durable,
            [redrive_subject(self.durable)],
            self.handler,
            replace(self.settings, batch=1),
            stream=REDRIVE_STREAM,
            create=self.create,
        )

    @property
    def ledger(self) -> FailureLedger:
        if self._ledger is None:
            raise NotConnected(self.jetstream.url)
        return self._ledger

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = self.jetstream.js
        if self.create:
            await js.add_consumer(
                self.stream, consumer_config(self.durable, self.subjects, self.settings)
            )
        else:
            await self._check_provisioned(js)
        self._ledger = FailureLedger(await js.key_value(LEDGER_BUCKET), self.durable, self.stream)
        return await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def _check_provisioned(self, js: JetStreamContext) -> None:
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            missing: Sequence[str] = self.subjects
        else:
            config = info.config
            reads = set(config.filter_subjects or [config.filter_subject or ">"])
            missing = [s for s in self.subjects if s not in reads and ">" not in reads]
        if missing:
            log.warning(
                "consumer not provisioned, waiting",
                extra={"consumer": self.durable, "stream": self.stream, "missing": missing},
            )
            raise ConsumerMissing(f"{self.stream}/{self.durable} lacks {list(missing)}")

    async def run(self) -> None:
        """Fetch and handle until cancelled; survives NATS outages."""
        while True:
            raise_if_cancelled()
            await self.jetstream.ready.wait()
            try:
                subscription = await self._subscribe()
                log.info(
                    "consumer started",
                    extra={
                        "consumer": self.durable,
                        "stream": self.stream,
                        "subjects": self.subjects,
                    },
                )
                await self._fetch_loop(subscription)
            except ConsumerMissing:  # logged by _check_provisioned
                await asyncio.sleep(1.0)
            except (NotConnected, nats.errors.Error, OSError) as error:
                log.warning(
                    "consumer lost NATS, retrying",
                    extra={"consumer": self.durable, "error": repr(error)},
                )
                await asyncio.sleep(1.0)

    async def _fetch_loop(self, subscription: JetStreamContext.PullSubscription) -> None:
        while True:
            raise_if_cancelled()
            unfinished = await self._fetch(subscription)
            try:
                suspect = next((m for m in unfinished if self._suspect(m)), None)
                self._alone = suspect is not None
                if suspect is not None and len(unfinished) > 1:
                    mates = [m for m in unfinished if m is not suspect]
                    unfinished = [suspect]
                    await self._release(mates)
                await self._process_fetched(unfinished)
            except asyncio.CancelledError:
                await self._release(unfinished)
                raise

    async def _fetch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        """The next messages, as soon as there is one: a long poll for the first, then as
        many of those waiting behind it (its ``num_pending``) as fit the batch. nats-py's
        fetch of n returns once n messages came or its timeout passed, so one fetch of a
        whole batch would hold a lone event for up to the timeout; a fetch of what is
        known to wait returns as soon as it came (``TOP_UP_SECONDS`` bounds it, should
        another replica take them first)."""
        first = await self._pull(subscription, 1, FETCH_TIMEOUT_SECONDS)
        if not first or self._alone:
            return first
        waiting = min(self.settings.batch - 1, first[0].metadata.num_pending or 0)
        if waiting <= 0:
            return first
        try:
            return first + await self._pull(subscription, waiting, TOP_UP_SECONDS)
        except asyncio.CancelledError:
            await self._release(first)
            raise

    async def _pull(
        self, subscription: JetStreamContext.PullSubscription, size: int, timeout: float
    ) -> list[Msg]:
        """One fetch; a stop while the pull request is open waits for its answer and
        hands back what it brought (else those messages would wait out the ack wait)."""
        fetching = asyncio.ensure_future(subscription.fetch(size, timeout=timeout))
        try:
            return await asyncio.shield(fetching)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._release(await asyncio.wait_for(fetching, RELEASE_TIMEOUT_SECONDS))
            raise

    def _suspect(self, message: Msg) -> bool:
        return message.metadata.num_delivered >= self.settings.suspect_after

    async def _release(self, messages: Sequence[Msg]) -> None:
        """Nak at once (no delay): another replica, or the next fetch, takes them."""
        if not messages:
            return
        with contextlib.suppress(Exception):
            for message in messages:
                with contextlib.suppress(nats.errors.MsgAlreadyAckdError):
                    await message.nak()
            await self.jetstream.flush(RELEASE_TIMEOUT_SECONDS)

    async def _process_fetched(self, unfinished: list[Msg]) -> None:
        """Handle fetched messages in stream order: each run of batchable events in one
        transaction (:meth:`_process_batch`), any other message alone (:meth:`process`).
        A message leaves ``unfinished`` once it is settled."""
        while unfinished:
            run: list[tuple[Msg, events_pb2.EventEnvelope]] = []
            for message in unfinished:
                envelope = self._batchable(message)
                if envelope is None:
                    break
                run.append((message, envelope))
            if len(run) > 1:
                await self._process_batch(run, unfinished)
            else:
                await self.process(unfinished[0])
                unfinished.pop(0)

    def _batchable(self, message: Msg) -> events_pb2.EventEnvelope | None:
        """The envelope of a message that may share a batch's transaction; None for one
        that is handled alone: undecodable, refused, a crash suspect, or an event whose
        policy runs alone (:func:`runs_alone`), or any message of a handler without
        batches."""
        handler = self.handler
        if not isinstance(handler, BatchHandler) or not handler.batches:
            return None
        if self._alone or self._suspect(message):
            return None
        try:
            envelope = _envelope(message)
        except Exception:  # process() dead-letters it
            return None
        if rejection(message.subject, envelope) is not None or handler.runs_alone(envelope):
            return None
        return envelope

    async def _process_batch(
        self, run: Sequence[tuple[Msg, events_pb2.EventEnvelope]], unfinished: list[Msg]
    ) -> None:
        """Apply ``run`` (the head of ``unfinished``) in one transaction, each event in a
        savepoint of it, in stream order; commit once; then ack the events applied or
        already handled (one flush for all) and give each failed one the treatment
        :meth:`process` gives it. If the transaction itself fails (its commit, or an
        error that leaves it unusable), nothing of it took effect and the run is handled
        again one event at a time, so a poison event never holds the others back."""
        assert isinstance(self.handler, BatchHandler)
        outcomes: list[Exception | None] = []
        try:
            async with self.handler.batch() as batch:
                for _, envelope in run:
                    with correlation.bound(correlation_of(envelope)):
                        outcomes.append(await _applied(batch, envelope))
                    if batch.broken:
                        raise BatchBroken(envelope.event_id) from outcomes[-1]
                await batch.commit()
        except Exception as error:
            metrics.CONSUMER_BATCH_FALLBACKS.labels(self.durable).inc()
            log.warning(
                "batch transaction failed, handling its events one at a time",
                extra={"consumer": self.durable, "events": len(run), "error": repr(error)},
            )
            for _ in run:
                await self.process(unfinished[0])
                unfinished.pop(0)
            return
        metrics.CONSUMER_BATCH_SIZE.labels(self.durable).observe(len(run))
        settled: list[Msg] = []
        failed: list[tuple[Msg, events_pb2.EventEnvelope, Exception]] = []
        for (message, envelope), outcome in zip(run, outcomes, strict=True):
            if outcome is not None and not isinstance(outcome, AlreadyHandled):
                failed.append((message, envelope, outcome))
                continue
            self._handled(envelope, duplicate=outcome is not None)
            settled.append(message)
        for message in settled:
            await message.ack()  # buffered: the flush below sends them all
        await self._flush_acks()
        for message, envelope, error in failed:
            with correlation.bound(correlation_of(envelope)):
                await self._failed(message, envelope, error, alone=False)
        del unfinished[: len(run)]

    async def _flush_acks(self) -> None:
        """Send the buffered acks in one round trip; if that fails they are still sent
        by the connection later, or the events come again and are found handled."""
        try:
            await self.jetstream.flush(RELEASE_TIMEOUT_SECONDS)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("acks not flushed", extra={"consumer": self.durable, "error": repr(error)})

    async def process(self, message: Msg) -> None:
        """Handle one message in a transaction of its own, then settle it."""
        try:
            envelope = _envelope(message)
        except Exception as error:
            await self._dead_letter(message, None, f"undecodable envelope: {error!r}", Tally())
            return
        refused = rejection(message.subject, envelope)
        if refused is not None:
            await self._reject(message, envelope, refused)
            return
        with correlation.bound(correlation_of(envelope)):
            await self._handle(message, envelope)

    async def _handle(self, message: Msg, envelope: events_pb2.EventEnvelope) -> None:
        seq = message.metadata.sequence.stream
        alone = self._suspect(message)
        if alone:
            tally = await self.ledger.read(seq)
            if tally.crashes >= self.settings.max_crashes:
                killed = f"killed its consumer {tally.crashes} times (last failure: {tally.error})"
                await self._dead_letter(message, envelope, killed, tally)
                return
            await self.ledger.change(seq, Tally.begun)
        try:
            await self.handler(envelope)
        except AlreadyHandled:
            self._handled(envelope, duplicate=True)
            await self._settled(message, alone)
        except asyncio.CancelledError:
            if alone:  # a stop is no crash
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self.ledger.change(seq, Tally.ended), RELEASE_TIMEOUT_SECONDS
                    )
            raise
        except Exception as error:
            await self._failed(message, envelope, error, alone)
        else:
            self._handled(envelope, duplicate=False)
            await self._settled(message, alone)

    def _handled(self, envelope: events_pb2.EventEnvelope, duplicate: bool) -> None:
        """Count an event whose effect is committed (or was already), and log it."""
        counter = metrics.EVENTS_DUPLICATE if duplicate else metrics.EVENTS_HANDLED
        counter.labels(self.durable, envelope.event_type).inc()
        with correlation.bound(correlation_of(envelope)):
            log.info(
                "event already handled" if duplicate else "event handled",
                extra={"consumer": self.durable},
            )

    async def _reject(self, message: Msg, envelope: events_pb2.EventEnvelope, reason: str) -> None:
        """Terminate (never redelivered, never handled), count and log a forged or
        misrouted event."""
        await message.term()
        metrics.EVENTS_REJECTED.labels(self.durable, reason).inc()
        log.error(
            "event rejected",
            extra={
                "consumer": self.durable,
                "reason": reason,
                "subject": message.subject,
                "source": envelope.source,
                "event_type": envelope.event_type,
                "event_id": envelope.event_id,
                "order_id": envelope.order_id,
                "stream_seq": message.metadata.sequence.stream,
            },
        )

    async def _settled(self, message: Msg, alone: bool) -> None:
        await message.ack()
        if alone:
            await self.ledger.forget(message.metadata.sequence.stream)

    async def _failed(
        self, message: Msg, envelope: events_pb2.EventEnvelope, error: Exception, alone: bool
    ) -> None:
        seq, deliveries = message.metadata.sequence.stream, message.metadata.num_delivered
        if isinstance(error, self.settings.transient):
            if alone:
                await self.ledger.change(seq, Tally.ended)
            delay, failures = self.settings.delay_after(deliveries), None
        else:
            tally = await self.ledger.change(seq, lambda t: t.failed(error, alone))
            if tally.failures >= self.settings.max_failures:
                await self._dead_letter(message, envelope, repr(error), tally)
                return
            delay, failures = self.settings.delay_after(tally.failures), tally.failures
        metrics.EVENTS_REDELIVERED.labels(self.durable, envelope.event_type).inc()
        log.warning(
            "event handling failed, will retry",
            extra={
                "consumer": self.durable,
                "event_type": envelope.event_type,
                "event_id": envelope.event_id,
                "order_id": envelope.order_id,
                "delivery": deliveries,
                "failures": failures,
                "retry_in_s": delay,
                "error": repr(error),
            },
        )
        await message.nak(delay=delay)

    async def _dead_letter(
        self,
        message: Msg,
        envelope: events_pb2.EventEnvelope | None,
        error: str,
        tally: Tally,
    ) -> None:
        """Store the dead letter, then ack the original; the consumer goes on."""
        metadata = message.metadata
        gave_up = GaveUp(
            durable=self.durable,
            stream=self.stream,
            stream_seq=metadata.sequence.stream,
            subject=message.subject,
            deliveries=metadata.num_delivered,
            failures=tally.failures,
            crashes=tally.crashes,
            error=error,
            **(
                {
                    "event_id": envelope.event_id,
                    "event_type": envelope.event_type,
                    "order_id": envelope.order_id,
                }
                if envelope is not None
                else {}
            ),
        )
        await self.jetstream.js.publish(
            dead_letter_subject(self.durable, gave_up.event_type),
            message.data,
            headers=gave_up.headers(),
            stream=DEAD_LETTER_STREAM,
        )
        await message.ack()
        if tally != Tally():
            await self.ledger.forget(gave_up.stream_seq)
        metrics.EVENTS_DEAD_LETTERED.labels(self.durable, gave_up.event_type).inc()
        log.error(
            "event dead-lettered",
            extra={
                "consumer": self.durable,
                "stream": self.stream,
                "stream_seq": gave_up.stream_seq,
                "event_type": gave_up.event_type,
                "event_id": gave_up.event_id or None,
                "order_id": gave_up.order_id or None,
                "deliveries": gave_up.deliveries,
                "failures": gave_up.failures,
                "crashes": gave_up.crashes,
                "error": header_safe(error),
            },
        )


class BatchBroken(Exception):
    """An event left the batch's transaction unable to commit."""


def _envelope(message: Msg) -> events_pb2.EventEnvelope:
    """The message's envelope; raises (a DecodeError, a ValueError) if it is not one."""
    envelope = events_pb2.EventEnvelope.FromString(message.data)
    if not envelope.event_id or not envelope.event_type:
        raise ValueError("envelope without event_id or event_type")
    return envelope


async def _applied(batch: HandlerBatch, envelope: events_pb2.EventEnvelope) -> Exception | None:
    """What applying one event in the batch raised (AlreadyHandled too); None: applied."""
    try:
        await batch.apply(envelope)
    except Exception as error:
        return error
    return None


Policy = Callable[[Any, Any], Awaitable[object]]
"""A reaction to an event: ``await policy(event, uow)``; other ports are bound by name
(:func:`bind`)."""

Policies = Mapping[type, Policy]
"""A service's ``{inbound event class: policy}`` table (cosmicpython's EVENT_HANDLERS)."""


class EventUnitOfWork(UnitOfWork, Protocol):
    def handling(self, causation: Causation) -> Self:
        """The same kind of unit of work, committing the event's processed mark too."""
        ...


class UnitOfWorkBatch(Protocol):
    """One transaction for many events (ptkit.sql.SqlBatch)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def handling(self, causation: Causation) -> EventUnitOfWork:
        """One event's unit of work, as a savepoint of the batch's transaction."""
        ...

    @property
    def broken(self) -> bool: ...

    async def commit(self) -> None: ...


@runtime_checkable
class BatchingUnitOfWork(EventUnitOfWork, Protocol):
    def batch(self) -> UnitOfWorkBatch: ...


RUNS_ALONE = "runs_alone"
"""The attribute :func:`runs_alone` sets on a policy."""


def runs_alone(policy: Policy) -> Policy:
    """Mark a policy that must never share a batch's transaction, in the table:
    ``{OrderCancelled: runs_alone(cancel_assignment_on_order_cancelled)}``.

    For a policy that calls another service (manager_svc asks trainer_svc to cancel a
    schedule): it makes that call outside any transaction of its own, but inside a batch
    the batch's write transaction would stay open across the call, holding SQLite's
    write lock (and PostgreSQL's row locks) for as long as the other service takes to
    answer, or to time out. The consumer handles such an event alone, as before
    batching, in stream order between the batches before and after it.
    """

    @functools.wraps(policy)
    async def alone(event: Any, uow: Any, **ports: Any) -> object:
        return await policy(event, uow, **ports)

    setattr(alone, RUNS_ALONE, True)
    return alone


def _runs_alone(policy: Policy) -> bool:
    return bool(getattr(policy, RUNS_ALONE, False))


def bind(policies: Policies, **dependencies: object) -> dict[type, Policy]:
    """The table with each dependency passed to the policies that take a parameter of
    its name (``schedules=trainer_client``); the composition root calls this once."""
    unused = set(dependencies)
    bound: dict[type, Policy] = {}
    for kind, policy in policies.items():
        parameters = inspect.signature(policy).parameters
        wanted = {name: value for name, value in dependencies.items() if name in parameters}
        unused -= set(wanted)
        bound[kind] = functools.partial(policy, **wanted) if wanted else policy
        if _runs_alone(policy):
            setattr(bound[kind], RUNS_ALONE, True)
    if unused:
        raise TypeError(f"no policy takes {sorted(unused)}")
    return bound


def policy_subjects(policies: Policies) -> tuple[str, ...]:
    """The subjects a policy table consumes (``pt.<source>.<EventType>`` of each class)."""
    return tuple(subject_of(kind) for kind in policies)


class PolicyHandler:
    """Envelope -> event -> policy, for one service's table.

    The durable name is the service's name; the subjects are those of the table's event
    classes. Each event is decoded into the class its table names and handed to the policy
    with a fresh unit of work bound to it (the processed-event mark commits with the
    effect). An event type the table does not name changes nothing.

    When the service's unit of work has batches (ptkit.sql.SqlUnitOfWork.batch), the
    consumer applies a fetched batch through :meth:`batch`: one transaction, each event's
    unit of work a savepoint of it. A policy marked :func:`runs_alone` is never batched.
    """

    def __init__(
        self,
        service: str,
        policies: Policies,
        new_uow: Callable[[], EventUnitOfWork],
        tracing: Tracing | None = None,
    ) -> None:
        for kind in policies:
            check_decodable(kind)
        self.tracing = tracing
        self.durable = service
        self.subjects = policy_subjects(policies)
        self.new_uow = new_uow
        self._by_type = {kind.__name__: (kind, policy) for kind, policy in policies.items()}

    @functools.cached_property
    def batches(self) -> bool:
        return isinstance(self.new_uow(), BatchingUnitOfWork)

    def runs_alone(self, envelope: events_pb2.EventEnvelope) -> bool:
        entry = self._by_type.get(envelope.event_type)
        return entry is not None and _runs_alone(entry[1])

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[PolicyBatch]:
        uow = self.new_uow()
        if not isinstance(uow, BatchingUnitOfWork):
            raise TypeError(f"{type(uow).__name__} has no batches")
        async with uow.batch() as transaction:
            yield PolicyBatch(self, transaction)

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        await self.apply(envelope, lambda causation: self.new_uow().handling(causation))

    async def apply(
        self,
        envelope: events_pb2.EventEnvelope,
        handling: Callable[[Causation], EventUnitOfWork],
    ) -> None:
        """Run the event's policy with the unit of work ``handling`` gives for it."""
        entry = self._by_type.get(envelope.event_type)
        if entry is None:
            return
        kind, policy = entry
        event = decode_event(envelope, kind)
        traced = (
            self.tracing.consuming(envelope, self.durable)
            if self.tracing is not None
            else contextlib.nullcontext()
        )
        with traced:
            await policy(event, handling(Causation(self.durable, envelope.event_id)))


@dataclass(frozen=True)
class PolicyBatch:
    """A fetched batch of one policy table, in one transaction."""

    handler: PolicyHandler
    transaction: UnitOfWorkBatch

    async def apply(self, envelope: events_pb2.EventEnvelope) -> None:
        await self.handler.apply(envelope, self.transaction.handling)

    @property
    def broken(self) -> bool:
        return self.transaction.broken

    async def commit(self) -> None:
        await self.transaction.commit()
