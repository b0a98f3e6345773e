"""The client (clients/python) against a real gRPC server in this process: fake
OrderService and StatusService servicers on a free port that page, fail on cue, abort
with a rich google.rpc.Status and record what reached them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ptplatform.order.v1 import order_service_pb2 as order_pb
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status_pb
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform_client import (
    AsyncClient,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RetryPolicy,
    Unavailable,
)

FAST = RetryPolicy(attempts=4, initial_backoff_s=0.001, max_backoff_s=0.002)
ORDERS = [f"order-{n:03}" for n in range(7)]


@dataclass
class Fakes(order_grpc.OrderServiceServicer, status_grpc.StatusServiceServicer):
    """``failures[method]``: how many calls of it fail with UNAVAILABLE before one works."""

    failures: dict[str, int] = field(default_factory=dict)
    calls: dict[str, list[object]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    page_size: int = 3

    def _arrive(self, method: str, request: object, context: grpc.ServicerContext) -> None:
        self.calls.setdefault(method, []).append(request)
        self.tokens += [v for k, v in context.invocation_metadata() if k == "authorization"]
        if self.failures.get(method, 0) > 0:
            self.failures[method] -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")

    def PlaceOrder(
        self, request: order_pb.PlaceOrderRequest, context: grpc.ServicerContext
    ) -> order_pb.Order:
        self._arrive("PlaceOrder", request, context)
        return order_pb.Order(order_id=f"for-{request.request_id}", class_name=request.class_name)

    def CancelOrder(
        self, request: order_pb.CancelOrderRequest, context: grpc.ServicerContext
    ) -> order_pb.Order:
        self._arrive("CancelOrder", request, context)
        return order_pb.Order(order_id=request.order_id, status=order_pb.ORDER_STATUS_CANCELLED)

    def GetOrder(
        self, request: order_pb.GetOrderRequest, context: grpc.ServicerContext
    ) -> order_pb.Order:
        self._arrive("GetOrder", request, context)
        if request.order_id == "bad":
            context.abort_with_status(rpc_status.to_status(bad_request()))
        if request.order_id == "held":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "class already held")
        context.abort(grpc.StatusCode.NOT_FOUND, f"no order {request.order_id}")

    def ListOrders(
        self, request: order_pb.ListOrdersRequest, context: grpc.ServicerContext
    ) -> order_pb.ListOrdersResponse:
        self._arrive("ListOrders", request, context)
        start = int(request.page_token or 0)
        end = start + self.page_size
        return order_pb.ListOrdersResponse(
            orders=[order_pb.Order(order_id=o) for o in ORDERS[start:end]],
            next_page_token=str(end) if end < len(ORDERS) else "",
        )

    def WatchNotifications(
        self, request: status_pb.WatchNotificationsRequest, context: grpc.ServicerContext
    ) -> Iterator[status_pb.Notification]:
        """Three notifications in all; the first stream breaks after the second."""
        self.calls.setdefault("WatchNotifications", []).append(request)
        after = request.after_sequence if request.HasField("after_sequence") else 0
        for sequence in range(after + 1, 4):
            yield status_pb.Notification(notification_id=f"n{sequence}", sequence=sequence)
            if len(self.calls["WatchNotifications"]) == 1 and sequence == 2:
                context.abort(grpc.StatusCode.UNAVAILABLE, "status_svc went away")


def bad_request() -> status_pb2.Status:
    """What the platform answers a PlaceOrder without a class name with (AIP-193)."""
    info, bad = any_pb2.Any(), any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason="FIELD_REQUIRED", domain="ptplatform.dev", metadata={"field": "class_name"}
        )
    )
    bad.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="class_name", description="class_name is required"
                )
            ]
        )
    )
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message="class_name is required", details=[info, bad]
    )


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    yield Fakes()


@pytest.fixture
def address(fakes: Fakes) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    order_grpc.add_OrderServiceServicer_to_server(fakes, server)
    status_grpc.add_StatusServiceServicer_to_server(fakes, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.fixture
def client(address: str) -> Iterator[Client]:
    with Client(address, token="tok-1", retry=FAST) as client:
        yield client


# -- the token and request ids --------------------------------------------------------------


def test_every_call_carries_the_bearer_token(client: Client, fakes: Fakes) -> None:
    list(client.orders.list())
    client.orders.cancel("o-1")
    assert fakes.tokens and set(fakes.tokens) == {"Bearer tok-1"}


def test_a_token_function_is_asked_for_every_call(address: str, fakes: Fakes) -> None:
    issued = iter(["tok-a", "tok-b"])
    with Client(address, token=lambda: next(issued)) as client:
        client.orders.cancel("o-1")
        client.orders.cancel("o-2")
    assert fakes.tokens == ["Bearer tok-a", "Bearer tok-b"]


def test_a_placement_gets_a_uuid4_request_id_unless_the_caller_set_one(
    client: Client, fakes: Fakes
) -> None:
    client.orders.place(class_name="Yoga", customer_name="Alice")
    client.orders.place(class_name="Yoga", customer_name="Alice", request_id="my-own-id")
    first, second = fakes.calls["PlaceOrder"]
    assert isinstance(first, order_pb.PlaceOrderRequest)
    assert uuid.UUID(first.request_id).version == 4
    assert isinstance(second, order_pb.PlaceOrderRequest)
    assert second.request_id == "my-own-id"


# -- retries --------------------------------------------------------------------------------


def test_a_placement_is_retried_with_the_same_request_id(client: Client, fakes: Fakes) -> None:
    fakes.failures["PlaceOrder"] = 2
    placed = client.orders.place(class_name="Yoga", customer_name="Alice")
    sent = fakes.calls["PlaceOrder"]
    assert len(sent) == 3
    ids = {
        request.request_id for request in sent if isinstance(request, order_pb.PlaceOrderRequest)
    }
    assert len(ids) == 1
    assert placed.order_id == f"for-{ids.pop()}"


def test_a_read_is_retried_until_the_attempts_run_out(client: Client, fakes: Fakes) -> None:
    fakes.failures["ListOrders"] = 10
    with pytest.raises(Unavailable, match="restarting"):
        list(client.orders.list())
    assert len(fakes.calls["ListOrders"]) == FAST.attempts


def test_a_cancellation_is_sent_once_even_when_unavailable(client: Client, fakes: Fakes) -> None:
    fakes.failures["CancelOrder"] = 1
    with pytest.raises(Unavailable):
        client.orders.cancel("o-1", "travelling")
    assert len(fakes.calls["CancelOrder"]) == 1


def test_a_refusal_is_not_retried(client: Client, fakes: Fakes) -> None:
    with pytest.raises(NotFound, match="no order o-9"):
        client.orders.get("o-9")
    with pytest.raises(FailedPrecondition):
        client.orders.get("held")
    assert len(fakes.calls["GetOrder"]) == 2


def test_the_backoff_grows_to_its_bound() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=0.5, multiplier=2)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]


# -- paging ---------------------------------------------------------------------------------


def test_list_follows_next_page_token_to_the_last_page(client: Client, fakes: Fakes) -> None:
    assert [o.order_id for o in client.orders.list("alice", page_size=3)] == ORDERS
    sent = fakes.calls["ListOrders"]
    assert [(r.page_token, r.page_size, r.customer_id) for r in sent] == [  # type: ignore[attr-defined]
        ("", 3, "alice"),
        ("3", 3, "alice"),
        ("6", 3, "alice"),
    ]


def test_pages_are_asked_for_only_as_they_are_used(client: Client, fakes: Fakes) -> None:
    orders = client.orders.list()
    assert next(orders).order_id == ORDERS[0]
    assert len(fakes.calls["ListOrders"]) == 1


def test_a_page_failing_once_is_retried_and_the_list_goes_on(client: Client, fakes: Fakes) -> None:
    orders = client.orders.list()
    first_page = [next(orders) for _ in range(3)]
    fakes.failures["ListOrders"] = 1
    rest = list(orders)
    assert [o.order_id for o in first_page + rest] == ORDERS


# -- errors ---------------------------------------------------------------------------------


def test_a_rich_status_becomes_a_typed_error_with_reason_and_field(client: Client) -> None:
    with pytest.raises(InvalidArgument) as refused:
        client.orders.get("bad")
    error = refused.value
    assert (error.code, error.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "class_name is required",
    )
    assert (error.reason, error.domain, dict(error.metadata)) == (
        "FIELD_REQUIRED",
        "ptplatform.dev",
        {"field": "class_name"},
    )
    assert error.fields == ("class_name",)
    assert error.field_violations[0].description == "class_name is required"
    assert "FIELD_REQUIRED" in str(error)


def test_an_error_without_details_keeps_its_code_and_message(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.orders.get("o-9")
    assert (missing.value.reason, missing.value.fields, missing.value.status) == ("", (), None)


# -- the watch ------------------------------------------------------------------------------


def test_a_broken_watch_resumes_after_the_last_notification(client: Client, fakes: Fakes) -> None:
    received = [n.sequence for n in client.status.watch_notifications("alice", after_sequence=0)]
    assert received == [1, 2, 3]
    _, again = fakes.calls["WatchNotifications"]
    assert isinstance(again, status_pb.WatchNotificationsRequest)
    assert again.after_sequence == 2


# -- the asyncio variant --------------------------------------------------------------------


async def test_the_async_client_sets_a_request_id_and_retries_a_placement_with_it(
    address: str, fakes: Fakes
) -> None:
    fakes.failures["PlaceOrder"] = 1
    async with AsyncClient(address, token="tok-1", retry=FAST) as client:
        placed = await client.call(
            client.order_service.PlaceOrder,
            order_pb.PlaceOrderRequest(class_name="Yoga", customer_name="Alice"),
        )
    first, again = fakes.calls["PlaceOrder"]
    assert isinstance(first, order_pb.PlaceOrderRequest)
    assert isinstance(again, order_pb.PlaceOrderRequest)
    assert uuid.UUID(first.request_id).version == 4
    assert again.request_id == first.request_id
    assert placed.order_id == f"for-{first.request_id}"
    assert set(fakes.tokens) == {"Bearer tok-1"}


async def test_the_async_client_sends_a_command_without_request_id_once(
    address: str, fakes: Fakes
) -> None:
    fakes.failures["CancelOrder"] = 1
    async with AsyncClient(address, retry=FAST) as client:
        with pytest.raises(Unavailable):
            await client.call(
                client.order_service.CancelOrder, order_pb.CancelOrderRequest(order_id="o-1")
            )
    assert len(fakes.calls["CancelOrder"]) == 1


async def test_the_async_client_pages_and_raises_typed_errors(address: str) -> None:
    async with AsyncClient(address, retry=FAST) as client:
        listed = [
            order.order_id
            async for order in client.items(
                client.order_service.ListOrders,
                order_pb.ListOrdersRequest(page_size=3),
                lambda page: page.orders,
            )
        ]
        assert listed == ORDERS
        with pytest.raises(InvalidArgument) as refused:
            await client.call(
                client.order_service.GetOrder,
                order_pb.GetOrderRequest(order_id="bad"),
                idempotent=True,
            )
    assert (refused.value.reason, refused.value.fields) == ("FIELD_REQUIRED", ("class_name",))
