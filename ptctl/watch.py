"""A watcher of one customer's notifications that survives lost connections.

WatchNotifications replays what a watcher missed when it passes the sequence of the last
notification it received (``after_sequence``). :class:`NotificationWatcher` keeps that
resume point and reconnects with it, with backoff, whenever the stream breaks (a killed
status_svc, a restarted gateway, a network cut) or the server ends it (a graceful
shutdown, or the end of the token's lifetime, when ``metadata`` gives a fresh one).
Delivery is at least once; the watcher drops what it already yielded.
``ptctl watch --customer ID`` prints what it yields as JSON lines.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ptctl.pages import every_page
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]

# The stream broke or its server went away: reconnect. Anything else (a bad token, a
# foreign customer, a bad request) would fail the same way again.
RECONNECT_ON = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,  # a reset stream (e.g. the upstream died behind Envoy)
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,  # cancelled by the peer, not by us (checked below)
    }
)


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnects: ``first``, doubling to ``most``; reset by a good stream."""

    first: float = 0.1
    most: float = 5.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.most)


class NotificationWatcher:
    """Yields the customer's notifications across reconnects, in sequence order.

    ``after`` is the resume point to start from (the sequence of the last notification
    the caller already has); without it the watcher starts at the newest notification
    recorded so far, read with ListNotifications, so nothing recorded during a first
    lost connection is missed either. ``metadata`` is called for every connection (a
    fresh token each time). ``stop`` ends the watch from another thread.
    """

    def __init__(
        self,
        stub: status_grpc.StatusServiceStub,
        customer_id: str,
        metadata: Callable[[], Metadata],
        after: int | None = None,
        backoff: Backoff | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.stub = stub
        self.customer_id = customer_id
        self.metadata = metadata
        self.after = after
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()
        self.reconnects = 0
        self._call: grpc.Future | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """End the watch: :meth:`notifications` returns."""
        self.stop.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def notifications(self) -> Iterator[status.Notification]:
        delays = self.backoff.delays()
        while not self.stop.is_set():
            try:
                if self.after is None:
                    self.after = self.resume_point()
                for notification in self._stream():
                    delays = self.backoff.delays()
                    if notification.sequence <= self.after:
                        continue  # already yielded (at-least-once replay)
                    self.after = notification.sequence
                    yield notification
            except grpc.RpcError as error:
                if self.stop.is_set():
                    return
                if error.code() not in RECONNECT_ON and not ended_by_token_expiry(error):
                    raise
                log.warning(
                    "notification watch lost, reconnecting",
                    extra={
                        "customer_id": self.customer_id,
                        "after_sequence": self.after,
                        "code": error.code().name,
                        "details": error.details(),
                    },
                )
            if self.stop.wait(next(delays)):
                return
            self.reconnects += 1

    def resume_point(self) -> int:
        """The sequence of the customer's newest notification so far (0: none)."""
        listed = every_page(
            lambda page: self.stub.ListNotifications(page, metadata=self.metadata(), timeout=10),
            status.ListNotificationsRequest(customer_id=self.customer_id),
            "notifications",
        )
        return max((n.sequence for n in listed), default=0)

    def _stream(self) -> Iterator[status.Notification]:
        call = self.stub.WatchNotifications(
            status.WatchNotificationsRequest(
                customer_id=self.customer_id, after_sequence=self.after
            ),
            metadata=self.metadata(),
        )
        with self._lock:
            self._call = call
        if self.stop.is_set():
            call.cancel()
        yield from call


def ended_by_token_expiry(error: grpc.RpcError) -> bool:
    """The server ended an open watch because its token expired (ErrorInfo TOKEN_EXPIRED
    with the last sequence it sent): watch again at once, with a fresh token. A token
    that had expired before the watch opened carries no last sequence: not retried."""
    if error.code() is not grpc.StatusCode.UNAUTHENTICATED:  # type: ignore[attr-defined]
        return False
    status_ = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status_.details if status_ is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason == "TOKEN_EXPIRED" and "last_sequence" in info.metadata
    return False


def as_json(notification: status.Notification) -> str:
    """One JSON line: the proto's JSON names, the sequence as a number."""
    fields: dict[str, Any] = MessageToDict(notification, preserving_proto_field_name=True)
    fields["sequence"] = notification.sequence
    return json.dumps(fields, sort_keys=True)
