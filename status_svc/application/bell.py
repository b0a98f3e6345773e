"""An in-process signal: "this replica just recorded a notification"."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class NotificationBell:
    """Wakes this replica's watchers at once. Notifications recorded by other replicas
    reach them by polling, so the bell only makes delivery faster, never possible."""

    def __init__(self) -> None:
        self._listeners: set[asyncio.Event] = set()

    def ring(self) -> None:
        for listener in self._listeners:
            listener.set()

    @contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """An event set by every ring while the block runs; clear it after waking."""
        listener = asyncio.Event()
        self._listeners.add(listener)
        try:
            yield listener
        finally:
            self._listeners.discard(listener)
