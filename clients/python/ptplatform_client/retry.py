"""Which calls are retried, how often, and how long to wait in between.

Only a call that is safe to repeat is retried: a read (Get, List, the start of a Watch),
and a creation that carries its request_id (the same id returns what the first attempt
created). Commands such as CancelOrder or AssignTrainer are sent once: their error
reaches the caller, who decides.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

T = TypeVar("T")

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""UNAVAILABLE: the gateway or a service is down or restarting. DEADLINE_EXCEEDED: one
attempt took longer than its own timeout (each attempt gets a fresh one). Neither is a
refusal, so an idempotent call may try again. RESOURCE_EXHAUSTED (the rate limit) is not
retried by default: add it to ``codes`` to wait out a burst."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter between attempts of an idempotent call."""

    attempts: int = 4
    """All attempts together, the first one included; 1 turns retries off."""
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = RETRYABLE

    def backoff_s(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1 for the first retry)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))

    def sleep(self, retry: int, sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait before retry number ``retry``: a random time up to its backoff."""
        sleep(random.uniform(0, self.backoff_s(retry)))

    def run(
        self,
        attempt: Callable[[], T],
        *,
        idempotent: bool,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """``attempt()`` until it succeeds, fails with a code not retried, the attempts run
        out, or (``idempotent`` False) at once."""
        retry = 0
        while True:
            try:
                return attempt()
            except grpc.RpcError as error:
                retry += 1
                if not (idempotent and retry < self.attempts and _code(error) in self.codes):
                    raise
            self.sleep(retry, sleep)

    async def run_async(self, attempt: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """:meth:`run` for a coroutine: the same rules, waiting with asyncio.sleep."""
        retry = 0
        while True:
            try:
                return await attempt()
            except grpc.RpcError as error:
                retry += 1
                if not (idempotent and retry < self.attempts and _code(error) in self.codes):
                    raise
            await asyncio.sleep(random.uniform(0, self.backoff_s(retry)))


NO_RETRY = RetryPolicy(attempts=1)


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    if isinstance(error, grpc.Call | grpc.aio.AioRpcError):
        return error.code()
    return None
