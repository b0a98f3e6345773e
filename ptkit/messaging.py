"""NATS JetStream: the connection, the domain-event stream, publishing, durable
consumers with explicit ack, nak with backoff and term for poison messages, and the
policy tables that turn a service's ``{event type: policy}`` into a consumer."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from ptkit import metrics
from ptkit.archive import ensure_archive
from ptkit.events import STREAM_SUBJECTS, check_decodable, decode_event, subject_of
from ptkit.ports import UnitOfWork
from ptkit.sql import AlreadyHandled, Causation
from ptplatform.events.v1 import events_pb2

log = logging.getLogger(__name__)


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


class JetStream:
    """One NATS connection per process, opened in the background and kept open.

    A service starts and serves even while NATS is down: the outbox holds events and
    consumers wait until :attr:`ready` is set.
    """

    def __init__(self, url: str, stream: StreamSettings = StreamSettings(), name: str = "") -> None:
        self.url = url
        self.stream = stream
        self.name = name
        self.ready = asyncio.Event()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        """Connect (retrying forever with jittered backoff) and make sure the stream exists."""
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.2, max=3.0, jitter=0.2),
            retry=retry_if_exception_type((OSError, nats.errors.Error, asyncio.TimeoutError)),
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info("retrying NATS connection", extra={"url": self.url})
                nc = await nats.connect(
                    self.url,
                    name=self.name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                )
                try:
                    js = nc.jetstream(timeout=5)
                    await self._ensure_stream(js)
                except BaseException:
                    await nc.close()
                    raise
        self._nc, self._js = nc, js
        self.ready.set()
        log.info("connected to NATS", extra={"url": self.url, "stream": self.stream.name})

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = StreamConfig(
            name=self.stream.name,
            subjects=[STREAM_SUBJECTS],
            storage=StorageType.FILE,
            duplicate_window=self.stream.duplicate_window_seconds,
            num_replicas=self.stream.replicas,
            max_age=self.stream.max_age_days * 86400,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
        await ensure_archive(js, self.stream)

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

    async def close(self) -> None:
        self.ready.clear()
        if self._nc is not None:
            await self._nc.close()
        self._nc = self._js = None


Handler = Callable[[events_pb2.EventEnvelope], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSettings:
    max_deliver: int = 8
    ack_wait_seconds: float = 30.0
    batch: int = 32
    backoff_seconds: Sequence[float] = field(default=(0.5, 1, 2, 4, 8, 15, 30))
    transient: tuple[type[BaseException], ...] = ()
    """Errors that never make an event poison (a dependency is down, e.g. manager_svc's
    ScheduleCancelUnavailable): the event is redelivered with the capped backoff however
    many deliveries it takes, and ``max_deliver`` counts only against other errors."""

    def delay_after(self, deliveries: int) -> float:
        return self.backoff_seconds[min(deliveries, len(self.backoff_seconds)) - 1]


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


class EventConsumer:
    """A durable pull consumer shared by all replicas of one service.

    Each message: decode the envelope, run the handler (which commits its effect and the
    processed-event mark in one transaction), then ack. A failure naks with backoff; once
    ``max_deliver`` deliveries failed, or the message can never be decoded, it is
    terminated, logged and counted.
    """

    def __init__(
        self,
        jetstream: JetStream,
        durable: str,
        subjects: Sequence[str],
        handler: Handler,
        settings: ConsumerSettings = ConsumerSettings(),
    ) -> None:
        self.jetstream = jetstream
        self.durable = durable
        self.subjects = list(subjects)
        self.handler = handler
        self.settings = settings

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = self.jetstream.js
        config = ConsumerConfig(
            durable_name=self.durable,
            filter_subjects=self.subjects,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.settings.ack_wait_seconds,
            max_deliver=-1 if self.settings.transient else self.settings.max_deliver,
            max_ack_pending=1000,
        )
        await js.add_consumer(self.jetstream.stream.name, config)
        return await js.pull_subscribe_bind(durable=self.durable, stream=self.jetstream.stream.name)

    async def run(self) -> None:
        """Fetch and handle until cancelled; survives NATS outages."""
        while True:
            raise_if_cancelled()
            await self.jetstream.ready.wait()
            try:
                subscription = await self._subscribe()
                log.info(
                    "consumer started", extra={"consumer": self.durable, "subjects": self.subjects}
                )
                await self._fetch_loop(subscription)
            except (NotConnected, nats.errors.Error, OSError) as error:
                log.warning(
                    "consumer lost NATS, retrying",
                    extra={"consumer": self.durable, "error": repr(error)},
                )
                await asyncio.sleep(1.0)

    async def _fetch_loop(self, subscription: JetStreamContext.PullSubscription) -> None:
        while True:
            raise_if_cancelled()
            try:
                messages = await subscription.fetch(self.settings.batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for message in messages:
                await self.process(message)

    async def process(self, message: Msg) -> None:
        try:
            envelope = events_pb2.EventEnvelope.FromString(message.data)
            if not envelope.event_id or not envelope.event_type:
                raise ValueError("envelope without event_id or event_type")
        except Exception as error:
            await self._terminate(message, "undecodable", error)
            return
        event_type = envelope.event_type
        try:
            await self.handler(envelope)
        except AlreadyHandled:
            metrics.EVENTS_DUPLICATE.labels(self.durable, event_type).inc()
            await message.ack()
        except Exception as error:
            deliveries = message.metadata.num_delivered
            poison = not isinstance(error, self.settings.transient)
            if poison and deliveries >= self.settings.max_deliver:
                await self._terminate(message, event_type, error, envelope)
                return
            delay = self.settings.delay_after(deliveries)
            metrics.EVENTS_REDELIVERED.labels(self.durable, event_type).inc()
            log.warning(
                "event handling failed, will retry",
                extra={
                    "consumer": self.durable,
                    "event_type": event_type,
                    "event_id": envelope.event_id,
                    "order_id": envelope.order_id,
                    "delivery": deliveries,
                    "retry_in_s": delay,
                    "error": repr(error),
                },
            )
            await message.nak(delay=delay)
        else:
            metrics.EVENTS_HANDLED.labels(self.durable, event_type).inc()
            await message.ack()

    async def _terminate(
        self,
        message: Msg,
        event_type: str,
        error: BaseException,
        envelope: events_pb2.EventEnvelope | None = None,
    ) -> None:
        metrics.EVENTS_TERMINATED.labels(self.durable, event_type).inc()
        log.error(
            "poison event terminated",
            extra={
                "consumer": self.durable,
                "event_type": event_type,
                "event_id": envelope.event_id if envelope else None,
                "order_id": envelope.order_id if envelope else None,
                "stream_seq": message.metadata.sequence.stream,
                "deliveries": message.metadata.num_delivered,
                "error": repr(error),
            },
        )
        await message.term()


Policy = Callable[[Any, Any], Awaitable[object]]
"""A reaction to an event: ``await policy(event, uow)``; other ports are bound by name
(:func:`bind`)."""

Policies = Mapping[type, Policy]
"""A service's ``{inbound event class: policy}`` table (cosmicpython's EVENT_HANDLERS)."""


class EventUnitOfWork(UnitOfWork, Protocol):
    def handling(self, causation: Causation) -> Self:
        """The same kind of unit of work, committing the event's processed mark too."""
        ...


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
    if unused:
        raise TypeError(f"no policy takes {sorted(unused)}")
    return bound


class PolicyHandler:
    """Envelope -> event -> policy, for one service's table.

    The durable name is the service's name; the subjects are those of the table's event
    classes. Each event is decoded into the class its table names and handed to the policy
    with a fresh unit of work bound to it (the processed-event mark commits with the
    effect). An event type the table does not name changes nothing.
    """

    def __init__(
        self,
        service: str,
        policies: Policies,
        new_uow: Callable[[], EventUnitOfWork],
    ) -> None:
        for kind in policies:
            check_decodable(kind)
        self.durable = service
        self.subjects = tuple(subject_of(kind) for kind in policies)
        self.new_uow = new_uow
        self._by_type = {kind.__name__: (kind, policy) for kind, policy in policies.items()}

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        entry = self._by_type.get(envelope.event_type)
        if entry is None:
            return
        kind, policy = entry
        event = decode_event(envelope, kind)
        await policy(event, self.new_uow().handling(Causation(self.durable, envelope.event_id)))
