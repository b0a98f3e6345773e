"""order_svc as users call it: gRPC through the real Envoy gateway."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import grpc
import pytest

from ptctl.launcher import Platform, binary
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.helpers import bearer


@pytest.fixture(scope="module")
def orders(platform: Platform) -> Iterator[pb_grpc.OrderServiceStub]:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        yield pb_grpc.OrderServiceStub(channel)


def customer() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


def test_grpcurl_lists_the_order_service_through_the_gateway(platform: Platform) -> None:
    listed = subprocess.run(
        [binary("grpcurl"), "-plaintext", platform.gateway_address, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "ptplatform.order.v1.OrderService" in listed


def test_place_get_list_and_cancel_an_order(
    platform: Platform, orders: pb_grpc.OrderServiceStub
) -> None:
    alice = customer()
    auth = bearer(platform.token("customer", alice))
    placed = orders.PlaceOrder(
        pb.PlaceOrderRequest(
            customer_name="Alice", class_name="Pilates 1:1", request_id=str(uuid.uuid4())
        ),
        metadata=auth,
    )
    assert placed.customer_id == alice
    assert placed.status == pb.ORDER_STATUS_PLACED

    assert orders.GetOrder(pb.GetOrderRequest(order_id=placed.order_id), metadata=auth) == placed
    listed = orders.ListOrders(pb.ListOrdersRequest(), metadata=auth)
    assert [o.order_id for o in listed.orders] == [placed.order_id]

    cancelled = orders.CancelOrder(
        pb.CancelOrderRequest(order_id=placed.order_id, reason="ill"), metadata=auth
    )
    assert cancelled.status == pb.ORDER_STATUS_CANCELLED
    assert cancelled.cancel_reason == "ill"


def test_retrying_place_order_with_the_same_request_id_returns_the_same_order(
    platform: Platform, orders: pb_grpc.OrderServiceStub
) -> None:
    auth = bearer(platform.token("customer", customer()))
    request = pb.PlaceOrderRequest(
        customer_name="Bo", class_name="Boxing", request_id=str(uuid.uuid4())
    )
    first = orders.PlaceOrder(request, metadata=auth)
    again = orders.PlaceOrder(request, metadata=auth)
    assert again.order_id == first.order_id
    assert len(orders.ListOrders(pb.ListOrdersRequest(), metadata=auth).orders) == 1


def test_list_orders_pages_with_a_token(
    platform: Platform, orders: pb_grpc.OrderServiceStub
) -> None:
    auth = bearer(platform.token("customer", customer()))
    placed = {
        orders.PlaceOrder(
            pb.PlaceOrderRequest(customer_name="C", class_name=f"Class {n}"), metadata=auth
        ).order_id
        for n in range(5)
    }
    seen, token = [], ""
    while True:
        page = orders.ListOrders(pb.ListOrdersRequest(page_size=2, page_token=token), metadata=auth)
        seen += [o.order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(placed)


BAD_REQUESTS = [
    (
        "PlaceOrder",
        pb.PlaceOrderRequest(customer_name="", class_name="Yoga"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "customer_name must not be empty",
    ),
    (
        "PlaceOrder",
        pb.PlaceOrderRequest(customer_name="A", class_name="y" * 101),
        grpc.StatusCode.INVALID_ARGUMENT,
        "class_name is too long",
    ),
    (
        "PlaceOrder",
        pb.PlaceOrderRequest(customer_name="A", class_name="Yoga", request_id="r" * 65),
        grpc.StatusCode.INVALID_ARGUMENT,
        "is not a UUID",
    ),
    (
        "GetOrder",
        pb.GetOrderRequest(order_id="not-an-id"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "not a valid id",
    ),
    (
        "GetOrder",
        pb.GetOrderRequest(order_id=""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "order_id is required",
    ),
    (
        "GetOrder",
        pb.GetOrderRequest(order_id=str(uuid.uuid4())),
        grpc.StatusCode.NOT_FOUND,
        "not found",
    ),
    (
        "CancelOrder",
        pb.CancelOrderRequest(order_id=str(uuid.uuid4())),
        grpc.StatusCode.NOT_FOUND,
        "not found",
    ),
    (
        "CancelOrder",
        pb.CancelOrderRequest(order_id="x'; drop table orders"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "not a valid id",
    ),
    (
        "ListOrders",
        pb.ListOrdersRequest(page_size=-1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_size",
    ),
    (
        "ListOrders",
        pb.ListOrdersRequest(page_token="garbage"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token is invalid",
    ),
]


@pytest.mark.parametrize(
    ("method", "request_message", "code", "message"),
    BAD_REQUESTS,
    ids=[f"{m}-{c.name}-{i}" for i, (m, _, c, _) in enumerate(BAD_REQUESTS)],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(
    platform: Platform,
    orders: pb_grpc.OrderServiceStub,
    method: str,
    request_message: object,
    code: grpc.StatusCode,
    message: str,
) -> None:
    auth = bearer(platform.token("customer", customer()))
    with pytest.raises(grpc.RpcError) as error:
        getattr(orders, method)(request_message, metadata=auth)
    assert error.value.code() == code
    assert message in error.value.details()
    assert orders.ListOrders(pb.ListOrdersRequest(), metadata=auth).orders == []


def test_cancelling_a_cancelled_order_is_a_failed_precondition(
    platform: Platform, orders: pb_grpc.OrderServiceStub
) -> None:
    auth = bearer(platform.token("customer", customer()))
    placed = orders.PlaceOrder(
        pb.PlaceOrderRequest(customer_name="A", class_name="Yoga"), metadata=auth
    )
    orders.CancelOrder(pb.CancelOrderRequest(order_id=placed.order_id), metadata=auth)
    with pytest.raises(grpc.RpcError) as error:
        orders.CancelOrder(pb.CancelOrderRequest(order_id=placed.order_id), metadata=auth)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already cancelled" in error.value.details()
    current = orders.GetOrder(pb.GetOrderRequest(order_id=placed.order_id), metadata=auth)
    assert current.version == 2


def test_a_call_without_a_token_is_unauthenticated(
    platform: Platform, orders: pb_grpc.OrderServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        orders.ListOrders(pb.ListOrdersRequest())
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
