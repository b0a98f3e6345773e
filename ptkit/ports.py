"""Ports every service's application layer shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self


class UnitOfWork(Protocol):
    """One atomic change: ``async with uow: ...; await uow.commit()``.

    A service's own unit of work extends this with its repositories.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the changes are committed (a batch: once it commits)."""
        ...


Clock = Callable[[], datetime]
"""Where use cases read the time: :func:`utcnow`, or a test's own clock."""


def utcnow() -> datetime:
    """The default clock of use cases; tests pass their own."""
    return datetime.now(UTC)
