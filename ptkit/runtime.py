"""What every service process has in common, wired once: settings from the
environment, database engine, JetStream connection, outbox relay, event consumers
and the gRPC host. A service's ``main.py`` declares only what differs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import uvloop
from sqlalchemy import MetaData

from ptkit.auth import JwtSettings, TokenVerifier, check_trust
from ptkit.config import ConfigError, Env
from ptkit.consumer_stats import ConsumerStats
from ptkit.events import EnvelopeSerializer
from ptkit.messaging import (
    ConsumerSettings,
    EventConsumer,
    EventUnitOfWork,
    JetStream,
    NatsIdentity,
    Policies,
    PolicyHandler,
    StreamSettings,
)
from ptkit.metrics import serve_metrics
from ptkit.migrations import upgrade_schema
from ptkit.outbox import OutboxRelay
from ptkit.paging import DEVELOPMENT_SECRET, PageTokens
from ptkit.retention import Retention, RetentionSettings
from ptkit.server import Registrar, ServiceHost
from ptkit.sql import MessagingTables, SqlUnitOfWork, create_engine
from ptkit.tls import TlsFiles
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER

if TYPE_CHECKING:
    from ptkit.tracing import Tracing

U = TypeVar("U", bound=SqlUnitOfWork)

DEFAULT_NATS_URL = "nats://127.0.0.1:14222"


@dataclass(frozen=True)
class TracingSettings:
    exporter: str = "off"
    """``off``, ``otlp`` (OTLP/gRPC to ``otlp_endpoint``) or ``console`` (stderr)."""
    otlp_endpoint: str = "http://127.0.0.1:4317"
    sample_ratio: float = 1.0
    """The share of bookings (and other traces) kept: a booking is kept or dropped in
    every service alike (its trace id decides)."""


def tracing_settings(env: Env) -> TracingSettings:
    """``PT_TRACING`` (off by default), ``PT_OTLP_ENDPOINT``, ``PT_TRACING_SAMPLE_RATIO``."""
    ratio = env.float("PT_TRACING_SAMPLE_RATIO", 1.0, minimum=0.0)
    if ratio > 1.0:
        raise ConfigError(f"PT_TRACING_SAMPLE_RATIO={ratio} is above 1 (all traces kept)")
    return TracingSettings(
        exporter=env.choice("PT_TRACING", "off", ("off", "otlp", "console")),
        otlp_endpoint=env.str("PT_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        sample_ratio=ratio,
    )


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    host: str
    port: int
    database_url: str
    nats_url: str
    metrics_port: int
    grace_seconds: float
    log_level: str
    jwt: JwtSettings
    stream: StreamSettings
    consumer: ConsumerSettings
    nats_identity: NatsIdentity = field(default_factory=NatsIdentity)
    drain_delay_seconds: float = 0.5
    outbox_retention_hours: float = 24.0
    page_token_secret: str = DEVELOPMENT_SECRET
    """Signs page tokens (ptkit.paging); the same on every replica of a service."""
    tls: TlsFiles | None = None
    """PT_TLS_*: the gRPC server requires mutual TLS (ptkit.tls); None: plaintext."""
    health_port: int = 0
    """PT_<CTX>_HEALTH_PORT: grpc.health.v1 alone, in plaintext, for probes; 0: none."""
    event_loop: str = "uvloop"
    """PT_EVENT_LOOP: ``uvloop`` (the default) or ``asyncio`` (the standard library's)."""
    tracing: TracingSettings = field(default_factory=TracingSettings)
    """PT_TRACING, PT_OTLP_ENDPOINT, PT_TRACING_SAMPLE_RATIO (ptkit.tracing)."""

    @classmethod
    def from_env(cls, context: str, default_port: int, env: Env | None = None) -> ServiceSettings:
        """Read ``PT_<CONTEXT>_*`` and the platform-wide ``PT_*`` variables."""
        env = env or Env()
        prefix = f"PT_{context.upper()}"
        var_dir = env.path("PT_VAR_DIR", Path("var"))
        service_keys = env.str("PT_JWT_SERVICE_KEY_FILE", "")
        jwt = JwtSettings(
            public_key_file=env.path("PT_JWT_PUBLIC_KEY_FILE", var_dir / "jwt" / "public.pem"),
            issuer=env.str("PT_JWT_ISSUER", DEV_ISSUER),
            audience=env.str("PT_JWT_AUDIENCE", DEV_AUDIENCE),
            service_key_file=Path(service_keys) if service_keys else None,
        )
        check_trust(jwt)
        port = env.port(f"{prefix}_PORT", default_port)
        health_port = env.port(f"{prefix}_HEALTH_PORT", 0)
        if health_port and health_port == port:
            raise ConfigError(
                f"{prefix}_HEALTH_PORT={health_port} is {prefix}_PORT too: "
                "the plaintext health port needs a port of its own"
            )
        return cls(
            name=f"{context}_svc",
            host=env.str(f"{prefix}_HOST", "127.0.0.1"),
            port=port,
            database_url=env.database_url(
                f"{prefix}_DATABASE_URL", f"sqlite:///{var_dir / f'{context}_svc.db'}"
            ),
            nats_url=env.str("PT_NATS_URL", DEFAULT_NATS_URL),
            metrics_port=env.port(f"{prefix}_METRICS_PORT", 0),
            grace_seconds=env.float("PT_SHUTDOWN_GRACE_SECONDS", 10.0),
            log_level=env.choice("PT_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            jwt=jwt,
            nats_identity=nats_identity(env),
            stream=stream_settings(env),
            drain_delay_seconds=env.float("PT_SHUTDOWN_DRAIN_DELAY_SECONDS", 0.5),
            outbox_retention_hours=env.float("PT_OUTBOX_RETENTION_HOURS", 24.0),
            consumer=consumer_settings(env),
            page_token_secret=env.str("PT_PAGE_TOKEN_SECRET", DEVELOPMENT_SECRET),
            tls=TlsFiles.from_env(env),
            health_port=health_port,
            event_loop=env.choice("PT_EVENT_LOOP", "uvloop", ("uvloop", "asyncio")),
            tracing=tracing_settings(env),
        )


def run(main: Coroutine[Any, Any, None], event_loop: str = "uvloop") -> None:
    """Run a service's main coroutine on ``event_loop`` (:attr:`ServiceSettings.event_loop`)."""
    if event_loop == "uvloop":
        uvloop.run(main)
    else:
        asyncio.run(main)


def stream_settings(env: Env) -> StreamSettings:
    """``PT_STREAM_*``: what the streams are (read by the services and the provisioner)."""
    return StreamSettings(
        name=env.str("PT_STREAM_NAME", "PT_EVENTS"),
        duplicate_window_seconds=env.float("PT_STREAM_DUPLICATE_WINDOW_SECONDS", 120.0, minimum=1),
        replicas=env.int("PT_STREAM_REPLICAS", 1, minimum=1, maximum=5),
        max_age_days=env.float("PT_STREAM_MAX_AGE_DAYS", 30.0, minimum=1),
    )


def nats_identity(env: Env) -> NatsIdentity:
    """``PT_NATS_NKEY_SEED_FILE`` (the process's nkey seed) and ``PT_NATS_CA_FILE`` (the
    CA of the server's TLS certificate); unset: anonymous, and the system's trust store."""
    files = {}
    for name in ("PT_NATS_NKEY_SEED_FILE", "PT_NATS_CA_FILE"):
        value = env.str(name, "")
        if value and not Path(value).is_file():
            raise ConfigError(f"{name}={value!r} does not exist")
        files[name] = Path(value) if value else None
    return NatsIdentity(files["PT_NATS_NKEY_SEED_FILE"], files["PT_NATS_CA_FILE"])


def consumer_settings(env: Env) -> ConsumerSettings:
    """``PT_CONSUMER_*``; ``PT_CONSUMER_MAX_DELIVER`` is read as a deprecated alias of
    ``PT_CONSUMER_MAX_FAILURES``."""
    max_failures = env.int("PT_CONSUMER_MAX_DELIVER", 8, minimum=1, maximum=1000)
    return ConsumerSettings(
        max_failures=env.int("PT_CONSUMER_MAX_FAILURES", max_failures, minimum=1, maximum=1000),
        ack_wait_seconds=env.float("PT_CONSUMER_ACK_WAIT_SECONDS", 30.0, minimum=1),
        suspect_after=env.int("PT_CONSUMER_SUSPECT_AFTER", 3, minimum=2, maximum=1000),
        max_crashes=env.int("PT_CONSUMER_MAX_CRASHES", 3, minimum=1, maximum=1000),
    )


def _tracing(settings: ServiceSettings) -> Tracing | None:
    """The service's tracing; None when off, and the SDK is then not even imported."""
    if settings.tracing.exporter == "off":
        return None
    from ptkit.tracing import Tracing

    return Tracing(settings.name, settings.tracing)


class ServiceRuntime:
    """``source`` is the context whose events the service publishes (``pt.<source>.*``);
    a service that publishes nothing (a read model, without an outbox) runs no relay."""

    def __init__(
        self,
        settings: ServiceSettings,
        metadata: MetaData,
        tables: MessagingTables,
        source: str | None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.tables = tables
        self.engine = create_engine(settings.database_url)
        self.tracing = _tracing(settings)
        if self.tracing is not None:
            self.tracing.instrument(self.engine)
        self.page_tokens = PageTokens(settings.page_token_secret)
        self.jetstream = JetStream(
            settings.nats_url, settings.stream, settings.name, settings.nats_identity
        )
        self.serializer: EnvelopeSerializer | None = None
        self.relay: OutboxRelay | None = None
        if source is not None:
            if tables.outbox is None:
                raise ValueError(f"{settings.name} publishes {source} events but has no outbox")
            self.serializer = EnvelopeSerializer(source, self.tracing)
            self.relay = OutboxRelay(self.engine, tables, self.jetstream, source)
        self.retention = Retention(
            self.engine,
            tables,
            RetentionSettings(
                outbox_hours=settings.outbox_retention_hours,
                processed_days=settings.stream.max_age_days,
            ),
        )
        self.consumers: list[EventConsumer] = []

    def unit_of_work_factory(self, cls: type[U]) -> Callable[[], U]:
        """Units of work of the service's own kind: one per call or event, each with its
        own connection and transaction; their commits wake the outbox relay."""

        wake = [self.relay.wake] if self.relay is not None else []

        def new_unit_of_work() -> U:
            return cls(self.engine, self.tables, self.serializer, on_commit=wake)

        return new_unit_of_work

    def consume(
        self,
        policies: Policies,
        new_uow: Callable[[], EventUnitOfWork],
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Run the service's policy table on its durable consumer (named after the
        service), and on the same durable of the redrive stream (the dead letters an
        operator hands back); both are provisioned by the admin (ptctl.nats_auth).
        ``transient`` errors never count as failures: the event is
        redelivered until its policy succeeds."""
        handler = PolicyHandler(self.settings.name, policies, new_uow, self.tracing)
        settings = replace(
            self.settings.consumer, transient=(*self.settings.consumer.transient, *transient)
        )
        consumer = EventConsumer(
            self.jetstream, handler.durable, handler.subjects, handler, settings, create=False
        )
        self.consumers += [consumer, consumer.redrive_consumer()]

    async def create_schema(self) -> None:
        """Run the service's migrations (adopting a database created before them)."""
        await upgrade_schema(self.engine, self.metadata)

    async def serve(
        self,
        services: Sequence[tuple[str, Registrar]],
        stop: asyncio.Event | None = None,
        described: Sequence[str] = (),
    ) -> None:
        """Serve ``services`` until ``stop``; reflection also describes ``described``."""
        await self.create_schema()
        serve_metrics(self.settings.host, self.settings.metrics_port, self.settings.name)
        host = ServiceHost(
            name=self.settings.name,
            host=self.settings.host,
            port=self.settings.port,
            verifier=TokenVerifier(self.settings.jwt),
            services=services,
            described=described,
            background=[
                self.jetstream.connect,
                *([self.relay.run] if self.relay is not None else []),
                self.retention.run,
                *(c.run for c in self.consumers),
                ConsumerStats(self.jetstream, self.consumers).run,
            ],
            on_shutdown=[
                self.jetstream.close,
                self.engine.dispose,
                *([self.tracing.shutdown] if self.tracing is not None else []),
            ],
            grace_seconds=self.settings.grace_seconds,
            drain_delay_seconds=self.settings.drain_delay_seconds,
            credentials=self.settings.tls.server_credentials() if self.settings.tls else None,
            health_port=self.settings.health_port,
            tracing=self.tracing,
        )
        await host.run(stop)

    def client_interceptors(self) -> Sequence[Any]:
        """What an outbound channel of the service adds: client spans, when tracing."""
        return self.tracing.client_interceptors() if self.tracing is not None else ()
