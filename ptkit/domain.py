"""Building blocks shared by every domain: events and aggregates. Pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Something that happened in the business; every event carries the order it is about."""

    order_id: str

    @property
    def event_type(self) -> str:
        return type(self).__name__


class Versioned(Protocol):
    """What a repository stores with optimistic locking: an aggregate, or a read model."""

    version: int


@dataclass(kw_only=True)
class Aggregate:
    """An aggregate root: a version for optimistic concurrency and the events it recorded.

    Each change bumps ``version``; the unit of work writes the recorded events to the
    outbox in the same transaction as the new state.
    """

    version: int = 0
    events: list[DomainEvent] = field(default_factory=list, repr=False, compare=False)

    def _record(self, event: DomainEvent) -> None:
        self.version += 1
        self.events.append(event)

    def _touch(self) -> None:
        """A change that publishes no event still moves the version."""
        self.version += 1


class DomainError(Exception):
    """Base of the business errors a command can be refused with.

    Besides its message, an error says what a client can branch on without parsing text:
    ``reason``, a stable UPPER_SNAKE_CASE name (the ErrorInfo reason, docs/gateway.md);
    ``field``, the request field at fault, if one is (a BadRequest field violation);
    ``metadata``, facts a client may show (the clashing schedule, the limit broken).
    """

    default_reason: ClassVar[str] = "REFUSED"

    def __init__(
        self,
        message: str = "",
        *,
        reason: str | None = None,
        field: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason
        self.field = field
        self.metadata = dict(metadata or {})


class LimitReached(DomainError):
    """The caller asks for more than a limit allows (RESOURCE_EXHAUSTED); retry later."""

    default_reason = "LIMIT_REACHED"


class NotFound(DomainError):
    """The thing the command names does not exist."""

    default_reason = "NOT_FOUND"


class InvalidValue(DomainError):
    """A value breaks a rule of the domain (empty name, negative duration...)."""

    default_reason = "INVALID_VALUE"


class IllegalTransition(DomainError):
    """The aggregate is in a state where the command is not allowed."""

    default_reason = "ILLEGAL_TRANSITION"


class ConcurrencyConflict(DomainError):
    """Somebody else changed the aggregate since it was read; retry the command."""

    default_reason = "CONCURRENT_CHANGE"
