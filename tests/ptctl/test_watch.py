"""``ptctl``'s resuming notification watcher against a scripted StatusService on a real
gRPC server: it reconnects after a broken stream with the last sequence it received,
drops a replayed duplicate, starts at the newest listed notification, and does not
retry a refusal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest

from ptctl.launcher import free_port
from ptctl.watch import Backoff, NotificationWatcher, as_json
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc

AUTH = (("authorization", "Bearer test"),)


def note(sequence: int) -> status.Notification:
    return status.Notification(
        notification_id=f"n-{sequence}",
        customer_id="alice",
        order_id=f"o-{sequence}",
        sequence=sequence,
    )


class ScriptedStatus(status_grpc.StatusServiceServicer):
    """Each watch call plays the next script: notifications, then an error code or
    (None) an open stream until the client goes away."""

    def __init__(self, scripts: list[tuple[list[int], grpc.StatusCode | None]]) -> None:
        self.scripts = scripts
        self.asked_after: list[int | None] = []
        self.listed = [note(5), note(7)]

    def ListNotifications(self, request, context):  # type: ignore[no-untyped-def]
        return status.ListNotificationsResponse(notifications=self.listed)

    def WatchNotifications(self, request, context):  # type: ignore[no-untyped-def]
        self.asked_after.append(
            request.after_sequence if request.HasField("after_sequence") else None
        )
        sequences, ending = self.scripts[len(self.asked_after) - 1]
        for sequence in sequences:
            yield note(sequence)
        if ending is not None:
            context.abort(ending, "scripted")
        gone = threading.Event()
        context.add_callback(gone.set)
        gone.wait(10)


Serve = Callable[[ScriptedStatus], status_grpc.StatusServiceStub]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[grpc.Server] = []
    channels: list[grpc.Channel] = []

    def start(servicer: ScriptedStatus) -> status_grpc.StatusServiceStub:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        status_grpc.add_StatusServiceServicer_to_server(servicer, server)
        port = free_port()
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        servers.append(server)
        channels.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        return status_grpc.StatusServiceStub(channels[-1])

    yield start
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(grace=None)


def first(watcher: NotificationWatcher, count: int) -> list[status.Notification]:
    stream = watcher.notifications()
    taken = [next(stream) for _ in range(count)]
    watcher.close()
    return taken


def test_a_broken_stream_resumes_after_the_last_sequence_and_drops_a_replayed_one(
    serve: Serve,
) -> None:
    servicer = ScriptedStatus([([1, 2], grpc.StatusCode.UNAVAILABLE), ([2, 3], None)])
    watcher = NotificationWatcher(serve(servicer), "alice", lambda: AUTH, 0, Backoff(0.01, 0.05))
    assert [n.notification_id for n in first(watcher, 3)] == ["n-1", "n-2", "n-3"]
    assert servicer.asked_after == [0, 2]
    assert watcher.reconnects == 1


def test_without_a_resume_point_the_watch_starts_at_the_newest_listed_notification(
    serve: Serve,
) -> None:
    servicer = ScriptedStatus([([8], None)])
    watcher = NotificationWatcher(serve(servicer), "alice", lambda: AUTH)
    assert [n.sequence for n in first(watcher, 1)] == [8]
    assert servicer.asked_after == [7]


def test_a_refused_watch_is_not_retried(serve: Serve) -> None:
    servicer = ScriptedStatus([([], grpc.StatusCode.PERMISSION_DENIED)])
    watcher = NotificationWatcher(serve(servicer), "alice", lambda: AUTH, 0, Backoff(0.01, 0.05))
    with pytest.raises(grpc.RpcError) as refused:
        next(watcher.notifications())
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert watcher.reconnects == 0


def test_a_json_line_keeps_the_sequence_a_number() -> None:
    assert '"sequence": 12' in as_json(note(12))
