"""Building blocks shared by every domain: events and aggregates. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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
    """Base of the business errors a command can be refused with."""


class NotFound(DomainError):
    """The thing the command names does not exist."""


class InvalidValue(DomainError):
    """A value breaks a rule of the domain (empty name, negative duration...)."""


class IllegalTransition(DomainError):
    """The aggregate is in a state where the command is not allowed."""


class ConcurrencyConflict(DomainError):
    """Somebody else changed the aggregate since it was read; retry the command."""
