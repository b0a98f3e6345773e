"""gRPC server bootstrap shared by every service.

Health (grpcio-health-checking) and reflection (grpcio-reflection) come with every
server. Every application call is authenticated, counted and timed; a refused call
answers a structured ``google.rpc.Status`` (:mod:`ptkit.grpc_errors`), a request whose
bytes do not parse is refused naming the field (:mod:`ptkit.wire`), and only a bug is
logged with its traceback. With ``health_port``, a second, plaintext server on that port
serves grpc.health.v1 only (the same statuses): kubelet's gRPC probes speak no TLS, so a
TLS service is probed there. SIGTERM/SIGINT: health goes
NOT_SERVING first, in-flight calls drain within the grace period, then background tasks
and resources stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ptkit import correlation, metrics
from ptkit.auth import TokenVerifier, bind_caller, unbind_caller
from ptkit.correlation import Correlation
from ptkit.domain import DomainError
from ptkit.grpc_errors import STATUS_FOR_ERROR, InternalError, grpc_status_of, status_for
from ptkit.wire import Undecodable, tolerant

if TYPE_CHECKING:
    from ptkit.tracing import Tracing

log = logging.getLogger(__name__)

_OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, refuses undecodable requests, maps business errors to structured
    statuses, and records metrics."""

    def __init__(self, verifier: TokenVerifier, tracing: Tracing | None = None) -> None:
        self.verifier = verifier
        self.tracing = tracing
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN_METHODS):
            return handler
        wrapped = self._wrapped.get(details.method)
        if wrapped is None:
            wrapped = self._wrapped[details.method] = self._wrap(details.method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The method's handler, authenticated, tolerant of undecodable bytes, counted;
        made once per method (the first call), not per call."""
        deserializer = handler.request_deserializer
        if deserializer is not None:
            deserializer = tolerant(deserializer, _request_type(method))
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _authenticate(self, metadata: dict[str, str]) -> Any:
        return bind_caller(self.verifier.caller_from(metadata.get("authorization")))

    def _begin(
        self, method: str, request: Any, context: grpc.aio.ServicerContext
    ) -> tuple[Token[Correlation | None], Any]:
        """Bind the call's correlation, then authenticate it."""
        metadata = dict(context.invocation_metadata() or ())
        correlated = correlation.bind(correlation.of_call(method, metadata, request))
        return correlated, self._authenticate(metadata)

    def _step(self, method: str, request: Any) -> AbstractContextManager[None]:
        """With tracing, a span in the booking's trace of the order the call names."""
        order_id = correlation.order_of(request)
        if self.tracing is None or not order_id:
            return nullcontext()
        return self.tracing.step(method.rpartition("/")[2], order_id)

    async def _fail(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        labels: tuple[str, ...],
        error: Exception,
    ) -> None:
        """Answers the structured status of ``error``. Called while handling it: an error
        that is no business error is a bug, logged once with its traceback; a refusal is
        the caller's mistake, logged without one."""
        code = status_for(error)
        if code is None or not isinstance(error, DomainError):
            log.exception("unexpected error", extra={"method": method})
            error = InternalError()
            code = STATUS_FOR_ERROR[InternalError]
        else:
            log.info(
                "call refused",
                extra={
                    "method": method,
                    "code": code.name,
                    "reason": error.reason,
                    "field": error.field,
                },
            )
        metrics.RPCS.labels(*labels, metrics.grpc_code(code)).inc()
        status = grpc_status_of(error, code)
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _unary(
        self, method: str, behaviour: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        labels = _labels("unary", method)
        started_total, answered = (
            metrics.RPCS_STARTED.labels(*labels),
            metrics.RPCS.labels(*labels, "OK"),
        )
        latency = metrics.RPC_LATENCY.labels(*labels)
        cancelled = metrics.RPCS.labels(*labels, metrics.grpc_code(grpc.StatusCode.CANCELLED))

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            started_total.inc()
            correlated = token = None
            try:
                correlated, token = self._begin(method, request, context)
                _refuse_undecodable(request)
                with self._step(method, request):
                    response = await behaviour(request, context)
            except asyncio.CancelledError:  # its client (or the gateway's per-try timeout) left
                cancelled.inc()
                raise
            except Exception as error:
                await self._fail(context, method, labels, error)
            else:
                answered.inc()
                _handled(started, response)
                return response
            finally:
                latency.observe(time.perf_counter() - started)
                if token is not None:
                    unbind_caller(token)
                if correlated is not None:
                    correlation.unbind(correlated)

        return call

    def _stream(
        self, method: str, behaviour: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        labels = _labels("server_stream", method)
        started_total, answered = (
            metrics.RPCS_STARTED.labels(*labels),
            metrics.RPCS.labels(*labels, "OK"),
        )
        latency, sent = (
            metrics.RPC_LATENCY.labels(*labels),
            metrics.STREAM_MESSAGES_SENT.labels(*labels),
        )
        cancelled = metrics.RPCS.labels(*labels, metrics.grpc_code(grpc.StatusCode.CANCELLED))

        async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            started_total.inc()
            correlated = token = None
            try:
                correlated, token = self._begin(method, request, context)
                _refuse_undecodable(request)
                async for response in behaviour(request, context):
                    yield response
                    sent.inc()
            except asyncio.CancelledError:  # the client went away: a stream's usual end
                cancelled.inc()
                raise
            except Exception as error:
                await self._fail(context, method, labels, error)
            else:
                answered.inc()
                _handled(started, None)
            finally:
                latency.observe(time.perf_counter() - started)
                if token is not None:
                    unbind_caller(token)
                if correlated is not None:
                    correlation.unbind(correlated)

        return call


def _handled(started: float, response: Any) -> None:
    """The call's log line: its correlation, the order it answered with, its duration."""
    extra: dict[str, Any] = {
        "code": "OK",
        "duration_ms": round(1000 * (time.perf_counter() - started), 2),
    }
    order_id = correlation.order_of(response)
    if order_id:
        extra["order_id"] = order_id
    log.info("call handled", extra=extra)


def _labels(grpc_type: str, method: str) -> tuple[str, str, str]:
    """``grpc_type``, ``grpc_service`` and ``grpc_method`` of ``/package.Service/Method``."""
    service, _, name = method.lstrip("/").rpartition("/")
    return grpc_type, service, name


def _refuse_undecodable(request: Any) -> None:
    """A request whose bytes did not parse is refused, after authentication."""
    if isinstance(request, Undecodable):
        raise request.error


def _request_type(method: str) -> Descriptor | None:
    """The request message of ``/package.Service/Method``, if its protos are loaded."""
    try:
        found = descriptor_pool.Default().FindMethodByName(method.lstrip("/").replace("/", "."))
    except KeyError:
        return None
    return found.input_type


Registrar = Callable[[grpc.aio.Server], None]


def registration(
    service: Any, add_to_server: Callable[[Any, grpc.aio.Server], None], servicer: Any
) -> tuple[str, Registrar]:
    """A servicer and the full name of the service it implements, ready for ServiceHost."""
    return service.full_name, lambda server: add_to_server(servicer, server)


DEFAULT_MAX_METADATA_BYTES = 64 * 1024


@dataclass
class ServiceHost:
    """Everything one service process runs: its gRPC services and background tasks."""

    name: str
    host: str
    port: int
    verifier: TokenVerifier
    services: Sequence[tuple[str, Registrar]]
    described: Sequence[str] = ()
    """Further services reflection describes (the whole public API, whichever service
    answers the reflection calls the gateway routes to one of them)."""
    background: Sequence[Callable[[], Awaitable[None]]] = ()
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()
    grace_seconds: float = 10.0
    drain_delay_seconds: float = 0.5
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    """The request metadata a call may carry (gRPC's soft and hard limit alike). grpc's
    default soft limit (8 KiB) rejects at random between it and its 16 KiB hard limit; the
    gateway forwards up to twice its header limit (the REST path travels again in
    x-envoy-original-path), which ptctl/envoy.py keeps below this."""
    credentials: grpc.ServerCredentials | None = None
    """TLS (ptkit.tls: mutual, a client certificate required); None: plaintext."""
    health_port: int = 0
    """A plaintext port serving grpc.health.v1 and nothing else (probes); 0: none."""
    tracing: Tracing | None = None
    """Server spans (opentelemetry-instrumentation-grpc) and booking spans; None: off."""
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or _stop_on_signals()
        traced = self.tracing.server_interceptors() if self.tracing is not None else []
        server = grpc.aio.server(
            interceptors=[*traced, CallInterceptor(self.verifier, self.tracing)],
            options=[
                ("grpc.max_metadata_size", self.max_metadata_bytes),
                ("grpc.absolute_max_metadata_size", self.max_metadata_bytes),
            ],
        )
        names = [name for name, _ in self.services]
        for _, register in self.services:
            register(server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            [
                *sorted({*names, *self.described}),
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        address = f"{self.host}:{self.port}"
        bound = (
            server.add_secure_port(address, self.credentials)
            if self.credentials is not None
            else server.add_insecure_port(address)
        )
        probes = self._health_server(health)
        await server.start()
        if probes is not None:
            await probes.start()
        for name in ["", *names]:
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        tasks = [
            asyncio.create_task(job(), name=getattr(job, "__qualname__", "job"))
            for job in self.background
        ]
        for task in tasks:
            task.add_done_callback(_log_crash)
        log.info(
            "serving",
            extra={
                "service": self.name,
                "address": f"{self.host}:{bound}",
                "tls": self.credentials is not None,
                "health_port": self.health_port,
            },
        )
        self.started.set()
        await stop.wait()

        log.info("shutting down", extra={"service": self.name, "grace_s": self.grace_seconds})
        await health.enter_graceful_shutdown()
        # keep answering while load balancers notice NOT_SERVING, then drain in-flight calls
        await asyncio.sleep(self.drain_delay_seconds)
        await server.stop(self.grace_seconds)
        if probes is not None:
            await probes.stop(None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for close in self.on_shutdown:
            await close()
        log.info("stopped", extra={"service": self.name})

    def _health_server(self, health: HealthServicer) -> grpc.aio.Server | None:
        """The plaintext health-only server on ``health_port``, sharing ``health``."""
        if not self.health_port:
            return None
        probes = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health, probes)
        probes.add_insecure_port(f"{self.host}:{self.health_port}")
        return probes


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def stop_on_signals() -> asyncio.Event:
    """An event SIGTERM/SIGINT set: pass it to :meth:`ServiceHost.run` and to whatever must
    end when shutdown starts (open server streams)."""
    return _stop_on_signals()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "background task crashed", exc_info=task.exception(), extra={"task": task.get_name()}
        )
