"""What ties a log line to the call or the event it belongs to.

On the request path the server binds the gateway's ``x-request-id`` (Envoy makes it: a
client's own value arrives apart, as ``x-client-request-id``, and is never the key), the
method and the ``order_id``; on the event path the consumer binds the event type and
the ids the envelope carries (the request id and the trace of the call that caused it).
The log formatter (ptkit.logs) adds them to every line; the envelope serializer passes
the request id on to the events a call or an event causes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields

REQUEST_ID = "x-request-id"
CLIENT_REQUEST_ID = "x-client-request-id"
MAX_ID_LENGTH = 128
"""Longer ids are cut: a log line never carries a client's megabyte."""


@dataclass(frozen=True, slots=True)
class Correlation:
    request_id: str = ""
    client_request_id: str = ""
    trace_id: str = ""
    """The trace of an event's cause, from its envelope (a call's comes from its span)."""
    method: str = ""
    event_type: str = ""
    event_id: str = ""
    order_id: str = ""

    def fields(self) -> dict[str, str]:
        """The fields that are set, for a log line."""
        return {name: value for name in _NAMES if (value := getattr(self, name))}


_NAMES = tuple(f.name for f in fields(Correlation))

_current: ContextVar[Correlation | None] = ContextVar("correlation", default=None)


def current() -> Correlation | None:
    return _current.get()


def bind(correlation: Correlation) -> Token[Correlation | None]:
    return _current.set(correlation)


def unbind(token: Token[Correlation | None]) -> None:
    _current.reset(token)


@contextmanager
def bound(correlation: Correlation) -> Iterator[None]:
    token = bind(correlation)
    try:
        yield
    finally:
        unbind(token)


def of_call(method: str, metadata: dict[str, str], request: object) -> Correlation:
    """A call's correlation: the gateway's ids from its metadata, the order it names."""
    return Correlation(
        request_id=metadata.get(REQUEST_ID, "")[:MAX_ID_LENGTH],
        client_request_id=metadata.get(CLIENT_REQUEST_ID, "")[:MAX_ID_LENGTH],
        method=method,
        order_id=order_of(request)[:MAX_ID_LENGTH],
    )


def order_of(message: object) -> str:
    """The ``order_id`` a request or response carries; "" for one without."""
    order_id = getattr(message, "order_id", "")
    return order_id if isinstance(order_id, str) else ""


def outbound_metadata() -> tuple[tuple[str, str], ...]:
    """What an outbound call passes on: the request id it is made for."""
    correlation = current()
    if correlation is None or not correlation.request_id:
        return ()
    return ((REQUEST_ID, correlation.request_id),)


def trace_id_of(traceparent: str) -> str:
    """The trace id (32 hex digits) of a W3C ``traceparent``; "" for none."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""
