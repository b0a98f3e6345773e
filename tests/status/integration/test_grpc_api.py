"""status_svc as a gRPC server fed by a real nats-server: views follow the published
events, notifications stream to watchers, bad input and foreign data are refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ptctl.launcher import free_port
from ptkit.auth import Role
from ptkit.config import Env
from ptkit.messaging import JetStream
from ptkit.runtime import ServiceSettings
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.manager.v1 import manager_service_pb2 as manager_pb
from ptplatform.order.v1 import order_service_pb2 as order_pb
from ptplatform.status.v1 import status_service_pb2 as pb
from ptplatform.status.v1 import status_service_pb2_grpc as pb_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer_pb
from status_svc.domain.events import ObservedEvent
from status_svc.main import serve
from tests.conftest import NatsServer
from tests.helpers import bearer, eventually
from tests.rpc_details import refusal_of
from tests.status.flows import OrderFlow, envelope_of, subject_of

CODE = grpc.StatusCode


@dataclass
class RunningStatus:
    address: str
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shut_down(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


async def start_status_svc(keys: KeyFiles, nats_url: str, var_dir: Path) -> RunningStatus:
    port = free_port()
    settings = ServiceSettings.from_env(
        "status",
        0,
        Env(
            {
                "PT_STATUS_PORT": str(port),
                "PT_STATUS_DATABASE_URL": f"sqlite:///{var_dir / 'status_svc.db'}",
                "PT_NATS_URL": nats_url,
                "PT_JWT_PUBLIC_KEY_FILE": str(keys.public_key),
                "PT_SHUTDOWN_GRACE_SECONDS": "2",
                "PT_SHUTDOWN_DRAIN_DELAY_SECONDS": "0",
            }
        ),
    )
    stop = asyncio.Event()
    running = RunningStatus(f"127.0.0.1:{port}", stop, asyncio.create_task(serve(settings, stop)))

    async def serving() -> bool:
        if running.task.done():
            running.task.result()  # start-up failed: raise why
        try:
            async with grpc.aio.insecure_channel(running.address) as channel:
                response = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
        except grpc.aio.AioRpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING

    await eventually(serving, timeout=15, what="status_svc serving")
    return running


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("status-nats")
    server = NatsServer(store)
    server.start()
    server.provision_consumers("status")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def publisher(nats: NatsServer) -> AsyncIterator[JetStream]:
    jetstream = JetStream(nats.url, name="test-publisher")
    await asyncio.wait_for(jetstream.connect(), 15)
    yield jetstream
    await jetstream.close()


@pytest.fixture(scope="module")
async def status_address(
    keys: KeyFiles, nats: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    running = await start_status_svc(keys, nats.url, tmp_path_factory.mktemp("status"))
    yield running.address
    await running.shut_down()


@pytest.fixture
async def stub(status_address: str) -> AsyncIterator[pb_grpc.StatusServiceStub]:
    async with grpc.aio.insecure_channel(status_address) as channel:
        yield pb_grpc.StatusServiceStub(channel)


@pytest.fixture
def as_role(keys: KeyFiles) -> Callable[[Role, str], tuple[tuple[str, str]]]:
    def metadata(role: Role, subject: str) -> tuple[tuple[str, str]]:
        return bearer(mint_token(keys, role, subject))

    return metadata


MANAGER = (Role.MANAGER, "m-1")


def someone(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def publish(publisher: JetStream, events: list[ObservedEvent]) -> None:
    for event in events:
        await publisher.publish(
            subject_of(event), envelope_of(event).SerializeToString(), event.event_id
        )


async def view_when(
    stub: pb_grpc.StatusServiceStub,
    metadata: tuple[tuple[str, str]],
    order_id: str,
    ready: Callable[[pb.OrderStatus], bool],
) -> pb.OrderStatus:
    async def check() -> pb.OrderStatus | None:
        try:
            view = await stub.GetOrderStatus(
                pb.GetOrderStatusRequest(order_id=order_id), metadata=metadata
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is CODE.NOT_FOUND:
                return None
            raise
        return view if ready(view) else None

    return await eventually(check, timeout=15, what=f"view of {order_id}")


async def test_the_view_ends_right_whatever_order_the_events_arrive_in(
    stub: pb_grpc.StatusServiceStub, publisher: JetStream, as_role: Callable
) -> None:
    flow = OrderFlow(customer_id=someone("c"), class_name="Pilates 1:1").held("t-lee")
    placed, result = flow.events[0], flow.events[-2]
    # a copy of the result under another message id: JetStream cannot drop it, the consumer must
    await publisher.publish(subject_of(result), envelope_of(result).SerializeToString(), "again")
    await publish(publisher, list(reversed(flow.events)))  # OrderPlaced comes last
    await publish(publisher, [placed])  # same message id: JetStream drops it
    view = await view_when(
        stub,
        as_role(*MANAGER),
        flow.order_id,
        lambda v: v.order_status == order_pb.ORDER_STATUS_COMPLETED and v.customer_name != "",
    )
    assert view.customer_id == flow.customer_id
    assert view.class_name == "Pilates 1:1"
    assert view.assignment_status == manager_pb.ASSIGNMENT_STATUS_ORDER_CONFIRMED
    assert view.schedule_status == trainer_pb.SCHEDULE_STATUS_CLASS_COMPLETED
    assert (view.trainer_id, view.trainer_name) == ("t-lee", "Lee")
    assert view.class_result == "Great form"
    assert view.start_time.ToDatetime().year == 2026
    assert view.HasField("update_time")
    customer = as_role(Role.CUSTOMER, flow.customer_id)
    notifications = await stub.ListNotifications(pb.ListNotificationsRequest(), metadata=customer)
    assert [n.message for n in notifications.notifications] == [
        "Your class result for 'Pilates 1:1' is ready"
    ]
    results = await stub.ListClassResults(
        pb.ListClassResultsRequest(customer_id=flow.customer_id), metadata=as_role(*MANAGER)
    )
    [listed] = results.results
    assert (listed.order_id, listed.class_name, listed.trainer_name, listed.result) == (
        flow.order_id,
        "Pilates 1:1",
        "Lee",
        "Great form",
    )


async def test_a_refused_cancellation_arriving_first_ends_completed_and_told(
    stub: pb_grpc.StatusServiceStub, publisher: JetStream, as_role: Callable
) -> None:
    flow = OrderFlow(customer_id=someone("c"), class_name="Boxing").placed().assigned("t-kim")
    flow.schedule_requested().schedule_confirmed("t-kim").order_confirmed().order_cancelled()
    flow.result("t-kim").cancellation_refused("class already held").order_completed()
    await publish(publisher, list(reversed(flow.events)))  # the compensation comes first
    view = await view_when(
        stub,
        as_role(*MANAGER),
        flow.order_id,
        lambda v: v.order_status == order_pb.ORDER_STATUS_COMPLETED and v.customer_name != "",
    )
    assert (view.class_result, view.cancellation_refused_reason) == (
        "Great form",
        "class already held",
    )
    assert view.assignment_status == manager_pb.ASSIGNMENT_STATUS_ORDER_CONFIRMED
    customer = as_role(Role.CUSTOMER, flow.customer_id)
    notifications = await stub.ListNotifications(pb.ListNotificationsRequest(), metadata=customer)
    assert [n.kind for n in notifications.notifications] == [
        pb.NOTIFICATION_KIND_CLASS_RESULT_READY,
        pb.NOTIFICATION_KIND_CANCELLATION_REFUSED,
    ]
    assert notifications.notifications[1].message.startswith(
        "Your cancellation of 'Boxing' could not be applied"
    )


async def test_watch_receives_a_notification_recorded_after_it_started(
    stub: pb_grpc.StatusServiceStub, publisher: JetStream, as_role: Callable
) -> None:
    alice, bob = someone("alice"), someone("bob")
    call = stub.WatchNotifications(
        pb.WatchNotificationsRequest(customer_id=alice), metadata=as_role(Role.CUSTOMER, alice)
    )
    await asyncio.wait_for(call.initial_metadata(), 10)  # the watch has its starting point
    others = OrderFlow(customer_id=bob).held()
    mine = OrderFlow(customer_id=alice, class_name="Yoga").held()
    await publish(publisher, others.events + mine.events)
    notification = await asyncio.wait_for(call.read(), 15)
    assert notification.customer_id == alice
    assert notification.order_id == mine.order_id
    assert notification.message == "Your class result for 'Yoga' is ready"
    call.cancel()


async def test_a_watch_resumed_after_a_sequence_replays_what_the_watcher_missed(
    stub: pb_grpc.StatusServiceStub, publisher: JetStream, as_role: Callable
) -> None:
    alice = someone("alice")
    held = [OrderFlow(customer_id=alice).held() for _ in range(3)]
    await publish(publisher, [event for flow in held for event in flow.events])
    auth = as_role(Role.CUSTOMER, alice)

    async def all_recorded() -> bool:
        listed = await stub.ListNotifications(
            pb.ListNotificationsRequest(customer_id=alice), metadata=auth
        )
        return len(listed.notifications) == 3

    await eventually(all_recorded, timeout=15, what="three notifications")
    replay = stub.WatchNotifications(
        pb.WatchNotificationsRequest(customer_id=alice, after_sequence=0), metadata=auth
    )
    everything = [await asyncio.wait_for(replay.read(), 10) for _ in range(3)]
    replay.cancel()
    assert {n.order_id for n in everything} == {flow.order_id for flow in held}
    assert [n.sequence for n in everything] == sorted(n.sequence for n in everything)

    resumed = stub.WatchNotifications(
        pb.WatchNotificationsRequest(customer_id=alice, after_sequence=everything[0].sequence),
        metadata=auth,
    )
    missed = [await asyncio.wait_for(resumed.read(), 10) for _ in range(2)]
    assert [n.notification_id for n in missed] == [n.notification_id for n in everything[1:]]
    live = OrderFlow(customer_id=alice).held()
    await publish(publisher, live.events)
    assert (await asyncio.wait_for(resumed.read(), 15)).order_id == live.order_id
    resumed.cancel()


async def test_a_negative_resume_point_is_refused_naming_the_field(
    stub: pb_grpc.StatusServiceStub, as_role: Callable
) -> None:
    call = stub.WatchNotifications(
        pb.WatchNotificationsRequest(customer_id="alice", after_sequence=-1),
        metadata=as_role(Role.CUSTOMER, "alice"),
    )
    with refused(CODE.INVALID_ARGUMENT, "after_sequence must not be negative"):
        await call.read()


async def test_a_watch_ends_cleanly_when_the_server_shuts_down(
    keys: KeyFiles, nats_server: NatsServer, tmp_path: Path, as_role: Callable
) -> None:
    running = await start_status_svc(keys, nats_server.url, tmp_path)
    async with grpc.aio.insecure_channel(running.address) as channel:
        call = pb_grpc.StatusServiceStub(channel).WatchNotifications(
            pb.WatchNotificationsRequest(), metadata=as_role(Role.CUSTOMER, "alice")
        )
        await asyncio.wait_for(call.initial_metadata(), 10)
        await running.shut_down()
        assert [n async for n in call] == []
        assert await call.code() is CODE.OK


def refused(code: grpc.StatusCode, message: str = "") -> pytest.RaisesExc:
    return pytest.raises(
        grpc.aio.AioRpcError, check=lambda e: e.code() is code and message in e.details()
    )


@pytest.fixture(scope="module")
async def booked(status_address: str, publisher: JetStream) -> OrderFlow:
    """An order of its own customer, held by a trainer of its own."""
    flow = OrderFlow(customer_id=someone("c")).placed().assigned(someone("t"))
    await publish(publisher, flow.events)
    return flow


def trainer_of(flow: OrderFlow) -> str:
    return flow.events[-1].trainer_id  # type: ignore[attr-defined]


async def ready(stub: pb_grpc.StatusServiceStub, as_role: Callable, flow: OrderFlow) -> None:
    await view_when(
        stub,
        as_role(*MANAGER),
        flow.order_id,
        lambda v: v.assignment_status == manager_pb.ASSIGNMENT_STATUS_TRAINER_ASSIGNED,
    )


async def test_an_order_is_read_by_its_customer_its_trainer_and_managers(
    stub: pb_grpc.StatusServiceStub, booked: OrderFlow, as_role: Callable
) -> None:
    await ready(stub, as_role, booked)
    request = pb.GetOrderStatusRequest(order_id=booked.order_id)
    for reader in [
        (Role.CUSTOMER, booked.customer_id),
        (Role.TRAINER, trainer_of(booked)),
        MANAGER,
    ]:
        view = await stub.GetOrderStatus(request, metadata=as_role(*reader))
        assert view.schedule_status == trainer_pb.SCHEDULE_STATUS_REQUESTED
    with refused(CODE.PERMISSION_DENIED, "may not read order"):
        await stub.GetOrderStatus(request, metadata=as_role(Role.CUSTOMER, someone("c")))
    with refused(CODE.PERMISSION_DENIED, "may not read order"):
        await stub.GetOrderStatus(request, metadata=as_role(Role.TRAINER, someone("t")))


async def test_customers_and_trainers_list_only_their_own_orders(
    stub: pb_grpc.StatusServiceStub, publisher: JetStream, booked: OrderFlow, as_role: Callable
) -> None:
    other = OrderFlow(customer_id=someone("c")).placed().assigned(someone("t"))
    await publish(publisher, other.events)
    await ready(stub, as_role, booked)
    await ready(stub, as_role, other)

    async def listed(reader: tuple[Role, str], **wanted: object) -> list[str]:
        request = pb.ListOrderStatusesRequest(**wanted)  # type: ignore[arg-type]
        response = await stub.ListOrderStatuses(request, metadata=as_role(*reader))
        return [view.order_id for view in response.statuses]

    assert await listed((Role.CUSTOMER, booked.customer_id)) == [booked.order_id]
    assert await listed((Role.TRAINER, trainer_of(booked))) == [booked.order_id]
    assert await listed(MANAGER, customer_id=other.customer_id) == [other.order_id]
    assert await listed(MANAGER, trainer_id=trainer_of(other)) == [other.order_id]
    placed = order_pb.ORDER_STATUS_PLACED
    assert other.order_id in await listed(MANAGER, order_status=placed)
    assert (
        await listed(
            MANAGER, customer_id=other.customer_id, order_status=order_pb.ORDER_STATUS_CANCELLED
        )
        == []
    )
    with refused(CODE.PERMISSION_DENIED, "may not act for customer"):
        await listed((Role.CUSTOMER, booked.customer_id), customer_id=other.customer_id)
    with refused(CODE.PERMISSION_DENIED, "may not act for trainer"):
        await listed((Role.TRAINER, trainer_of(booked)), trainer_id=trainer_of(other))


@pytest.mark.parametrize("method", ["ListClassResults", "ListNotifications"])
async def test_results_and_notifications_are_for_their_customer_and_managers(
    stub: pb_grpc.StatusServiceStub, as_role: Callable, method: str
) -> None:
    call = getattr(stub, method)
    request = getattr(pb, f"{method}Request")
    await call(request(), metadata=as_role(Role.CUSTOMER, "alice"))
    await call(request(customer_id="alice"), metadata=as_role(*MANAGER))
    with refused(CODE.PERMISSION_DENIED, "may not act for customer 'bob'"):
        await call(request(customer_id="bob"), metadata=as_role(Role.CUSTOMER, "alice"))
    with refused(CODE.PERMISSION_DENIED, "role 'trainer' may not do this"):
        await call(request(customer_id="alice"), metadata=as_role(Role.TRAINER, "t-kim"))


async def test_nobody_watches_another_customers_notifications(
    stub: pb_grpc.StatusServiceStub, as_role: Callable
) -> None:
    call = stub.WatchNotifications(
        pb.WatchNotificationsRequest(customer_id="bob"), metadata=as_role(Role.CUSTOMER, "alice")
    )
    with refused(CODE.PERMISSION_DENIED, "may not act for customer 'bob'"):
        await call.read()
    call = stub.WatchNotifications(
        pb.WatchNotificationsRequest(customer_id="bob"), metadata=as_role(Role.TRAINER, "t-kim")
    )
    with refused(CODE.PERMISSION_DENIED, "role 'trainer' may not do this"):
        await call.read()


BAD_INPUT = [
    ("GetOrderStatus", {"order_id": ""}, MANAGER, CODE.INVALID_ARGUMENT, "order_id is required"),
    ("GetOrderStatus", {"order_id": "o-1"}, MANAGER, CODE.INVALID_ARGUMENT, "is not a valid id"),
    (
        "GetOrderStatus",
        {"order_id": "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"},
        MANAGER,
        CODE.NOT_FOUND,
        "no status for order 5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e",
    ),
    (
        "ListOrderStatuses",
        {"customer_id": "no spaces"},
        MANAGER,
        CODE.INVALID_ARGUMENT,
        "customer_id",
    ),
    ("ListOrderStatuses", {"trainer_id": "t" * 65}, MANAGER, CODE.INVALID_ARGUMENT, "trainer_id"),
    (
        "ListOrderStatuses",
        {"order_status": 42},
        MANAGER,
        CODE.INVALID_ARGUMENT,
        "order_status 42 is not a known order status",
    ),
    (
        "ListOrderStatuses",
        {"assignment_status": 42},
        MANAGER,
        CODE.INVALID_ARGUMENT,
        "assignment_status 42 is not a known assignment status",
    ),
    ("ListClassResults", {}, MANAGER, CODE.INVALID_ARGUMENT, "customer_id is required"),
    (
        "ListClassResults",
        {"customer_id": "a/b"},
        MANAGER,
        CODE.INVALID_ARGUMENT,
        "customer_id 'a/b' is invalid",
    ),
    ("ListNotifications", {}, MANAGER, CODE.INVALID_ARGUMENT, "customer_id is required"),
    (
        "ListNotifications",
        {"customer_id": "a b"},
        MANAGER,
        CODE.INVALID_ARGUMENT,
        "customer_id 'a b' is invalid",
    ),
]


@pytest.mark.parametrize(
    ("method", "fields", "reader", "code", "message"),
    BAD_INPUT,
    ids=[f"{method}:{message}" for method, _, _, _, message in BAD_INPUT],
)
async def test_bad_input_is_refused_with_a_reason(
    stub: pb_grpc.StatusServiceStub,
    as_role: Callable,
    method: str,
    fields: dict[str, object],
    reader: tuple[Role, str],
    code: grpc.StatusCode,
    message: str,
) -> None:
    request = getattr(pb, f"{method}Request")(**fields)
    with refused(code, message):
        await getattr(stub, method)(request, metadata=as_role(*reader))


@pytest.mark.parametrize(
    ("fields", "message"),
    [({}, "customer_id is required"), ({"customer_id": "a b"}, "customer_id 'a b' is invalid")],
)
async def test_a_bad_watch_request_is_refused_with_a_reason(
    stub: pb_grpc.StatusServiceStub, as_role: Callable, fields: dict[str, str], message: str
) -> None:
    call = stub.WatchNotifications(
        pb.WatchNotificationsRequest(**fields), metadata=as_role(*MANAGER)
    )
    with refused(CODE.INVALID_ARGUMENT, message):
        await call.read()


async def test_a_call_without_a_token_is_unauthenticated(stub: pb_grpc.StatusServiceStub) -> None:
    with refused(CODE.UNAUTHENTICATED, "missing bearer token"):
        await stub.ListOrderStatuses(pb.ListOrderStatusesRequest())
    with refused(CODE.UNAUTHENTICATED, "missing bearer token"):
        await stub.WatchNotifications(pb.WatchNotificationsRequest(customer_id="alice")).read()


# -- structured errors (AIP-193) ------------------------------------------------------------


async def test_an_unknown_view_and_a_bad_id_are_told_apart_by_their_reason(
    stub: pb_grpc.StatusServiceStub, as_role: Callable
) -> None:
    unknown = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetOrderStatus(
            pb.GetOrderStatusRequest(order_id=unknown), metadata=as_role(*MANAGER)
        )
    missing = refusal_of(caught.value)
    assert (missing.code, missing.info.reason, dict(missing.info.metadata), missing.fields) == (
        CODE.NOT_FOUND,
        "ORDER_STATUS_NOT_FOUND",
        {"order_id": unknown},
        [],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListClassResults(
            pb.ListClassResultsRequest(customer_id="al\x00ice"), metadata=as_role(*MANAGER)
        )
    bad = refusal_of(caught.value)
    assert (bad.code, bad.info.reason, bad.fields) == (
        CODE.INVALID_ARGUMENT,
        "INVALID_ID",
        ["customer_id"],
    )
