"""Outbound gRPC adapter: trainer_svc.CancelSchedule through Envoy's internal listener.

Each call has a deadline; transient failures are retried with jittered exponential
backoff, bounded both in attempts and in total time, so a consumer never hangs on a
dead trainer_svc. A business refusal (FAILED_PRECONDITION) is never retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from manager_svc.application.ports import ScheduleCancelRefused, ScheduleCancelUnavailable
from ptkit.auth import Role
from ptkit.correlation import outbound_metadata
from ptkit.tls import TlsFiles, aio_channel
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles, mint_token
from ptplatform.trainer.v1 import trainer_service_pb2 as pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_SUBJECT = "manager_svc"

RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


@dataclass(frozen=True)
class TrainerCallSettings:
    address: str
    call_timeout_seconds: float = 2.0
    attempts: int = 3
    max_seconds: float = 5.0
    backoff_initial_seconds: float = 0.1
    backoff_max_seconds: float = 1.0
    tls: TlsFiles | None = None
    """Mutual TLS to Envoy's internal listener (ptkit.tls); None: plaintext."""


class ServiceToken:
    """manager_svc's own short-lived service token, minted with the platform's signing
    key and minted again shortly before it expires."""

    def __init__(
        self,
        keys: KeyFiles,
        *,
        issuer: str = DEV_ISSUER,
        audience: str = DEV_AUDIENCE,
        ttl_seconds: int = 300,
        refresh_before_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.refresh_before_seconds = min(refresh_before_seconds, ttl_seconds // 2)
        self.clock = clock
        self._token = ""
        self._expires_at = 0.0

    def __call__(self) -> str:
        now = self.clock()
        if now >= self._expires_at - self.refresh_before_seconds:
            self._token = mint_token(
                self.keys,
                Role.SERVICE,
                SERVICE_SUBJECT,
                self.ttl_seconds,
                self.issuer,
                self.audience,
                now,
            )
            self._expires_at = int(now) + self.ttl_seconds
        return self._token


def _retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in RETRYABLE_CODES


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "CancelSchedule failed, retrying",
        extra={
            "attempt": state.attempt_number,
            "code": error.code().name if isinstance(error, grpc.aio.AioRpcError) else None,
            "retry_in_s": round(state.upcoming_sleep, 3),
        },
    )


class TrainerClient:
    """The ScheduleCanceller port over gRPC."""

    def __init__(
        self,
        settings: TrainerCallSettings,
        token: Callable[[], str],
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self.settings = settings
        self.token = token
        self.interceptors = interceptors
        """Client spans, when tracing (ServiceRuntime.client_interceptors)."""
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> pb_grpc.TrainerServiceStub:
        if self._channel is None:
            self._channel = aio_channel(
                self.settings.address, self.settings.tls, interceptors=self.interceptors
            )
        return pb_grpc.TrainerServiceStub(self._channel)

    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        settings = self.settings
        request = pb.CancelScheduleRequest(order_id=order_id, reason=reason)
        deadline = time.monotonic() + settings.max_seconds
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.attempts) | stop_before_delay(settings.max_seconds),
            wait=wait_exponential_jitter(
                multiplier=settings.backoff_initial_seconds,
                max=settings.backoff_max_seconds,
                jitter=settings.backoff_initial_seconds,
            ),
            retry=retry_if_exception(_retryable),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    timeout = min(
                        settings.call_timeout_seconds, max(deadline - time.monotonic(), 0.01)
                    )
                    await self._stub().CancelSchedule(
                        request,
                        timeout=timeout,
                        metadata=(
                            ("authorization", f"Bearer {self.token()}"),
                            *outbound_metadata(),
                        ),
                    )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
                raise ScheduleCancelRefused(error.details() or "refused by trainer_svc") from None
            raise ScheduleCancelUnavailable(
                f"trainer_svc CancelSchedule for order {order_id} failed: "
                f"{error.code().name} {error.details() or ''}".strip()
            ) from error

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
