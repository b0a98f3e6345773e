"""The typed Python client (ptplatform_client) against the real platform, through the
gateway: placing and listing orders, a retried placement, errors as typed exceptions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as order_pb
from ptplatform_client import Client, InvalidArgument, NotFound, PermissionDenied

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@pytest.fixture
def customer_id() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def customer(platform: Platform, customer_id: str) -> Iterator[Client]:
    with Client(platform.gateway_address, token=platform.token("customer", customer_id)) as c:
        yield c


def test_a_customer_places_orders_and_lists_them_all_page_by_page(
    customer: Client, customer_id: str
) -> None:
    placed = [
        customer.orders.place(
            class_name=f"Pilates {n}", customer_name="Alice", preferred_start=START
        )
        for n in range(5)
    ]
    assert all(o.status == order_pb.ORDER_STATUS_PLACED for o in placed)
    assert {o.customer_id for o in placed} == {customer_id}
    listed = list(customer.orders.list(page_size=2))
    assert sorted(o.order_id for o in listed) == sorted(o.order_id for o in placed)
    assert len({o.order_id for o in listed}) == len(listed)  # no order twice across pages


def test_placing_again_with_the_same_request_id_returns_the_same_order(
    customer: Client,
) -> None:
    request_id = str(uuid.uuid4())
    first = customer.orders.place(
        class_name="Boxing", customer_name="Alice", preferred_start=START, request_id=request_id
    )
    again = customer.orders.place(
        class_name="Boxing", customer_name="Alice", preferred_start=START, request_id=request_id
    )
    assert again.order_id == first.order_id
    assert customer.orders.get(first.order_id).order_id == first.order_id


def test_refusals_are_typed_errors(customer: Client, platform: Platform) -> None:
    with pytest.raises(NotFound) as missing:
        customer.orders.get(str(uuid.uuid4()))
    assert missing.value.code is grpc.StatusCode.NOT_FOUND
    with pytest.raises(InvalidArgument) as refused:
        customer.orders.place(class_name="", customer_name="Alice", preferred_start=START)
    assert "class_name" in refused.value.message or "class_name" in refused.value.fields
    with Client(platform.gateway_address, token=platform.token("trainer", "kim")) as trainer:
        with pytest.raises(PermissionDenied):
            trainer.orders.place(class_name="Yoga", customer_name="Kim", customer_id="alice")
