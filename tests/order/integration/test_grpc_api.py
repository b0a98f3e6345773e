"""order_svc's gRPC API on a real server and a migrated SQLite database: what a client
sends and gets back, error codes, who may see and cancel which order, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from order_svc.adapters import sql
from order_svc.adapters.grpc_api import OrderServiceAdapter
from ptkit.auth import Role
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageTokens
from ptkit.server import registration
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.helpers import bearer, database, outbox_envelopes, serving
from tests.rpc_details import refusal_of

CODE = grpc.StatusCode


@dataclass
class OrderApi:
    stub: pb_grpc.OrderServiceStub
    keys: KeyFiles
    outbox: Callable[[], Awaitable[list[str]]]
    """The event types in the outbox, oldest first."""

    def as_(self, role: Role, subject: str) -> tuple[tuple[str, str]]:
        return bearer(mint_token(self.keys, role, subject))

    async def place(
        self, customer: str, class_name: str = "Pilates 1:1", **fields: str
    ) -> pb.Order:
        request = pb.PlaceOrderRequest(customer_name="Alice", class_name=class_name, **fields)
        return await self.stub.PlaceOrder(request, metadata=self.as_(Role.CUSTOMER, customer))


@pytest.fixture
async def api(keys: KeyFiles, tmp_path: Path) -> AsyncIterator[OrderApi]:
    async with database(f"sqlite:///{tmp_path / 'order.db'}", sql.metadata) as engine:

        def new_uow() -> sql.SqlOrderUnitOfWork:
            return sql.SqlOrderUnitOfWork(engine, sql.messaging, EnvelopeSerializer("order"))

        adapter = OrderServiceAdapter(new_uow, PageTokens.development())
        service = pb.DESCRIPTOR.services_by_name["OrderService"]
        add = pb_grpc.add_OrderServiceServicer_to_server

        async def outbox() -> list[str]:
            return [e.event_type for e in await outbox_envelopes(engine, sql.messaging)]

        async with serving(registration(service, add, adapter), keys, "order_svc") as channel:
            yield OrderApi(pb_grpc.OrderServiceStub(channel), keys, outbox)


async def rejected(call: object, code: grpc.StatusCode, says: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    assert says in (caught.value.details() or "")


async def test_a_customer_places_an_order_for_themselves_and_reads_it_back(api: OrderApi) -> None:
    placed = await api.place("alice")
    assert (placed.customer_id, placed.status, placed.version) == (
        "alice",
        pb.ORDER_STATUS_PLACED,
        1,
    )
    assert placed.create_time.seconds > 0
    got = await api.stub.GetOrder(
        pb.GetOrderRequest(order_id=placed.order_id), metadata=api.as_(Role.CUSTOMER, "alice")
    )
    assert got == placed
    assert await api.outbox() == ["OrderPlaced"]


async def test_the_same_request_id_returns_the_same_order(api: OrderApi) -> None:
    first = await api.place("alice", request_id="6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13")
    again = await api.place("alice", request_id="6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13")
    assert again.order_id == first.order_id
    assert await api.outbox() == ["OrderPlaced"]


async def test_without_request_id_a_copy_sent_again_by_the_gateway_returns_the_same_order(
    api: OrderApi,
) -> None:
    """The gateway retries a try it lost with the same x-request-id it made for the call."""
    request = pb.PlaceOrderRequest(customer_name="Alice", class_name="Pilates 1:1")
    alice = api.as_(Role.CUSTOMER, "alice")
    gateway = (("x-request-id", "0d4e2f6a-1b3c-4d5e-8f70-9a1b2c3d4e5f"),)
    first = await api.stub.PlaceOrder(request, metadata=alice + gateway)
    retried = await api.stub.PlaceOrder(request, metadata=alice + gateway)
    another_call = await api.stub.PlaceOrder(request, metadata=alice)
    assert retried.order_id == first.order_id
    assert another_call.order_id != first.order_id
    assert await api.outbox() == ["OrderPlaced", "OrderPlaced"]


async def test_bad_input_is_invalid_argument_naming_the_field(api: OrderApi) -> None:
    alice = api.as_(Role.CUSTOMER, "alice")
    await rejected(
        api.stub.PlaceOrder(pb.PlaceOrderRequest(class_name="Pilates"), metadata=alice),
        CODE.INVALID_ARGUMENT,
        "customer_name",
    )
    await rejected(
        api.stub.GetOrder(pb.GetOrderRequest(order_id="not-an-id"), metadata=alice),
        CODE.INVALID_ARGUMENT,
        "order_id",
    )
    await rejected(api.place("alice", request_id="r" * 65), CODE.INVALID_ARGUMENT, "request_id")
    assert await api.outbox() == []


async def test_a_customer_sees_and_cancels_only_their_own_orders(api: OrderApi) -> None:
    placed = await api.place("alice")
    bob = api.as_(Role.CUSTOMER, "bob")
    get = pb.GetOrderRequest(order_id=placed.order_id)
    await rejected(api.stub.GetOrder(get, metadata=bob), CODE.PERMISSION_DENIED, "bob")
    cancel = pb.CancelOrderRequest(order_id=placed.order_id, reason="not mine")
    await rejected(api.stub.CancelOrder(cancel, metadata=bob), CODE.PERMISSION_DENIED, "bob")
    await rejected(
        api.stub.PlaceOrder(
            pb.PlaceOrderRequest(customer_id="alice", customer_name="B", class_name="Yoga"),
            metadata=bob,
        ),
        CODE.PERMISSION_DENIED,
        "bob",
    )
    manager = api.as_(Role.MANAGER, "kim")
    assert (await api.stub.GetOrder(get, metadata=manager)).order_id == placed.order_id
    assert await api.outbox() == ["OrderPlaced"]


async def test_cancel_then_cancel_again_is_failed_precondition(api: OrderApi) -> None:
    placed = await api.place("alice")
    alice = api.as_(Role.CUSTOMER, "alice")
    cancel = pb.CancelOrderRequest(order_id=placed.order_id, reason=" ill ")
    cancelled = await api.stub.CancelOrder(cancel, metadata=alice)
    assert (cancelled.status, cancelled.cancel_reason) == (pb.ORDER_STATUS_CANCELLED, "ill")
    await rejected(
        api.stub.CancelOrder(cancel, metadata=alice), CODE.FAILED_PRECONDITION, "already cancelled"
    )
    unknown = pb.CancelOrderRequest(order_id="5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e")
    await rejected(api.stub.CancelOrder(unknown, metadata=alice), CODE.NOT_FOUND, "not found")
    assert await api.outbox() == ["OrderPlaced", "OrderCancelled"]


async def test_orders_list_newest_first_in_pages(api: OrderApi) -> None:
    placed = [await api.place("alice", class_name=f"class {n}") for n in range(3)]
    await api.place("bob")
    alice = api.as_(Role.CUSTOMER, "alice")
    first = await api.stub.ListOrders(pb.ListOrdersRequest(page_size=2), metadata=alice)
    assert [o.order_id for o in first.orders] == [placed[2].order_id, placed[1].order_id]
    assert first.next_page_token
    rest = await api.stub.ListOrders(
        pb.ListOrdersRequest(page_size=2, page_token=first.next_page_token), metadata=alice
    )
    assert [o.order_id for o in rest.orders] == [placed[0].order_id]
    assert rest.next_page_token == ""
    everyone = await api.stub.ListOrders(
        pb.ListOrdersRequest(), metadata=api.as_(Role.MANAGER, "kim")
    )
    assert len(everyone.orders) == 4


async def test_listing_refuses_bad_pages_and_strangers(api: OrderApi) -> None:
    alice = api.as_(Role.CUSTOMER, "alice")
    await rejected(
        api.stub.ListOrders(pb.ListOrdersRequest(page_size=-1), metadata=alice),
        CODE.INVALID_ARGUMENT,
        "page_size",
    )
    await rejected(
        api.stub.ListOrders(pb.ListOrdersRequest(page_token="garbage"), metadata=alice),
        CODE.INVALID_ARGUMENT,
        "page_token",
    )
    await rejected(
        api.stub.ListOrders(pb.ListOrdersRequest(customer_id="bob"), metadata=alice),
        CODE.PERMISSION_DENIED,
        "bob",
    )
    await rejected(
        api.stub.ListOrders(pb.ListOrdersRequest(), metadata=api.as_(Role.TRAINER, "t-1")),
        CODE.PERMISSION_DENIED,
        "trainer",
    )


async def test_a_call_without_a_valid_token_is_unauthenticated(api: OrderApi) -> None:
    await rejected(api.stub.ListOrders(pb.ListOrdersRequest()), CODE.UNAUTHENTICATED, "bearer")
    await rejected(
        api.stub.ListOrders(pb.ListOrdersRequest(), metadata=bearer("not-a-jwt")),
        CODE.UNAUTHENTICATED,
        "invalid token",
    )


# -- structured errors (AIP-193) ------------------------------------------------------------


async def refusal(call: object) -> tuple[str, list[str], dict[str, str]]:
    """(ErrorInfo reason, BadRequest fields, ErrorInfo metadata) of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    refused = refusal_of(caught.value)
    return refused.info.reason, refused.fields, dict(refused.info.metadata)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"customer_name": "Al\x00ice"}, "customer_name", "INVALID_CHARACTERS"),
        ({"class_name": "Yoga\tFlow"}, "class_name", "INVALID_CHARACTERS"),
        ({"class_name": " "}, "class_name", "REQUIRED"),
        ({"customer_name": "x" * 101}, "customer_name", "TOO_LONG"),
        ({"customer_id": "bob smith"}, "customer_id", "INVALID_ID"),
    ],
)
async def test_a_bad_order_names_the_field_and_writes_nothing(
    api: OrderApi, fields: dict[str, str], field: str, reason: str
) -> None:
    request = pb.PlaceOrderRequest(customer_id="alice", customer_name="Alice", class_name="Yoga")
    for name, value in fields.items():
        setattr(request, name, value)
    call = api.stub.PlaceOrder(request, metadata=api.as_(Role.MANAGER, "kim"))
    found, named, _ = await refusal(call)
    assert (found, named) == (reason, [field])
    assert await api.outbox() == []


async def test_order_refusals_name_the_order(api: OrderApi) -> None:
    order = await api.place("alice")
    alice = api.as_(Role.CUSTOMER, "alice")
    unknown = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"
    missing = api.stub.GetOrder(pb.GetOrderRequest(order_id=unknown), metadata=alice)
    assert await refusal(missing) == ("ORDER_NOT_FOUND", [], {"order_id": unknown})
    cancel = pb.CancelOrderRequest(order_id=order.order_id, reason="first line\nsecond line")
    assert (await api.stub.CancelOrder(cancel, metadata=alice)).cancel_reason == (
        "first line\nsecond line"
    )
    again = api.stub.CancelOrder(cancel, metadata=alice)
    assert await refusal(again) == (
        "ORDER_ALREADY_CANCELLED",
        [],
        {"order_id": order.order_id},
    )
    bob = api.stub.GetOrder(
        pb.GetOrderRequest(order_id=order.order_id), metadata=api.as_(Role.CUSTOMER, "bob")
    )
    assert await refusal(bob) == ("PERMISSION_DENIED", [], {"role": "customer"})
