"""Every refused call answers a google.rpc.Status (AIP-193) from the kit's interceptor:
ErrorInfo with a reason, BadRequest naming the field; undecodable requests are the
caller's mistake, a bug is INTERNAL and the only thing logged with a traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from order_svc.domain.model import OrderNotFound
from ptkit.auth import Caller, PermissionDenied, Role, current_caller
from ptkit.domain import InvalidValue
from ptkit.grpc_errors import ERROR_DOMAIN, grpc_status_of, rpc_status_of
from ptkit.server import registration
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from ptplatform.status.v1 import status_service_pb2 as status_pb
from ptplatform.status.v1 import status_service_pb2_grpc as status_pb_grpc
from tests.helpers import bearer, serving
from tests.rpc_details import refusal_from, refusal_of

CODE = grpc.StatusCode
GET_ORDER = "/ptplatform.order.v1.OrderService/GetOrder"


class Refusing(pb_grpc.OrderServiceServicer):
    """GetOrder fails as its order_id says."""

    def __init__(self) -> None:
        self.calls = 0

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        self.calls += 1
        match request.order_id:
            case "invalid":
                raise InvalidValue(
                    "class_name is bad", reason="BAD_CLASS", field="class_name", metadata={"k": "v"}
                )
            case "missing":
                raise OrderNotFound("o-9")
            case "denied":
                current_caller().require(Role.MANAGER)
            case "bug":
                raise RuntimeError("secret internals")
        return pb.Order(order_id=request.order_id)


class Watching(status_pb_grpc.StatusServiceServicer):
    async def WatchNotifications(
        self, request: status_pb.WatchNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[status_pb.Notification]:
        yield status_pb.Notification(notification_id="n-1")
        raise InvalidValue("after_sequence is bad", field="after_sequence")


@pytest.fixture
async def orders(keys: KeyFiles) -> AsyncIterator[tuple[grpc.aio.Channel, Refusing]]:
    servicer = Refusing()
    service = pb.DESCRIPTOR.services_by_name["OrderService"]
    add = pb_grpc.add_OrderServiceServicer_to_server
    async with serving(registration(service, add, servicer), keys) as channel:
        yield channel, servicer


def customer(keys: KeyFiles) -> tuple[tuple[str, str]]:
    return bearer(mint_token(keys, Role.CUSTOMER, "alice"))


async def failed_get(channel: grpc.aio.Channel, order_id: str, metadata: object) -> grpc.RpcError:
    stub = pb_grpc.OrderServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=metadata)
    return caught.value


async def test_a_refusal_naming_a_field_carries_error_info_and_a_field_violation(
    orders: tuple[grpc.aio.Channel, Refusing], keys: KeyFiles
) -> None:
    refusal = refusal_of(await failed_get(orders[0], "invalid", customer(keys)))
    assert (refusal.code, refusal.message) == (CODE.INVALID_ARGUMENT, "class_name is bad")
    assert (refusal.info.reason, refusal.info.domain) == ("BAD_CLASS", ERROR_DOMAIN)
    assert dict(refusal.info.metadata) == {"k": "v"}
    assert refusal.fields == ["class_name"]
    assert (refusal.violations[0].description, refusal.violations[0].reason) == (
        "class_name is bad",
        "BAD_CLASS",
    )


async def test_a_refusal_without_a_field_carries_error_info_only(
    orders: tuple[grpc.aio.Channel, Refusing], keys: KeyFiles
) -> None:
    refusal = refusal_of(await failed_get(orders[0], "missing", customer(keys)))
    assert (refusal.code, refusal.info.reason) == (CODE.NOT_FOUND, "ORDER_NOT_FOUND")
    assert dict(refusal.info.metadata) == {"order_id": "o-9"}
    assert refusal.violations == []


async def test_authentication_and_permission_refusals_have_reasons(
    orders: tuple[grpc.aio.Channel, Refusing], keys: KeyFiles
) -> None:
    channel = orders[0]
    missing = refusal_of(await failed_get(channel, "o-1", ()))
    assert (missing.code, missing.info.reason) == (CODE.UNAUTHENTICATED, "UNAUTHENTICATED")
    expired_token = mint_token(keys, Role.CUSTOMER, "alice", ttl_seconds=-120)
    expired = refusal_of(await failed_get(channel, "o-1", bearer(expired_token)))
    assert (expired.code, expired.info.reason) == (CODE.UNAUTHENTICATED, "TOKEN_EXPIRED")
    denied = refusal_of(await failed_get(channel, "denied", customer(keys)))
    assert (denied.code, denied.info.reason) == (CODE.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
    assert dict(denied.info.metadata) == {"role": "customer", "allowed_roles": "manager"}


async def test_a_bug_is_internal_with_nothing_of_it_told_and_logged_once_with_its_traceback(
    orders: tuple[grpc.aio.Channel, Refusing], keys: KeyFiles, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ptkit.server"):
        error = await failed_get(orders[0], "bug", customer(keys))
    refusal = refusal_of(error)
    assert (refusal.code, refusal.message, refusal.info.reason) == (
        CODE.INTERNAL,
        "internal error",
        "INTERNAL",
    )
    assert "secret" not in str(error.trailing_metadata())
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR


async def test_invalid_utf8_in_a_request_is_refused_naming_the_field_without_a_traceback(
    orders: tuple[grpc.aio.Channel, Refusing], keys: KeyFiles, caplog: pytest.LogCaptureFixture
) -> None:
    channel, servicer = orders
    raw = channel.unary_unary(GET_ORDER)
    with caplog.at_level(logging.INFO, logger="ptkit.server"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(b"\x0a\x02\xff\xfe", metadata=customer(keys))
    refusal = refusal_of(caught.value)
    assert (refusal.code, refusal.info.reason, refusal.fields) == (
        CODE.INVALID_ARGUMENT,
        "INVALID_UTF8",
        ["order_id"],
    )
    assert servicer.calls == 0
    assert not [r for r in caplog.records if r.exc_info]
    refused = [r for r in caplog.records if r.getMessage() == "call refused"]
    assert [(r.levelno, r.reason, r.field) for r in refused] == [  # type: ignore[attr-defined]
        (logging.INFO, "INVALID_UTF8", "order_id")
    ]


async def test_bytes_that_are_no_request_are_refused_as_malformed(
    orders: tuple[grpc.aio.Channel, Refusing], keys: KeyFiles
) -> None:
    raw = orders[0].unary_unary(GET_ORDER)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\x0a\x09", metadata=customer(keys))
    refusal = refusal_of(caught.value)
    assert (refusal.code, refusal.info.reason, refusal.fields) == (
        CODE.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        [],
    )


async def test_an_undecodable_request_without_a_token_is_unauthenticated_first(
    orders: tuple[grpc.aio.Channel, Refusing],
) -> None:
    raw = orders[0].unary_unary(GET_ORDER)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\x0a\x01\xff")
    assert refusal_of(caught.value).info.reason == "UNAUTHENTICATED"


async def test_a_stream_that_fails_midway_ends_with_a_structured_status(keys: KeyFiles) -> None:
    service = status_pb.DESCRIPTOR.services_by_name["StatusService"]
    add = status_pb_grpc.add_StatusServiceServicer_to_server
    async with serving(registration(service, add, Watching()), keys) as channel:
        stub = status_pb_grpc.StatusServiceStub(channel)
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for notification in stub.WatchNotifications(
                status_pb.WatchNotificationsRequest(), metadata=customer(keys)
            ):
                received.append(notification.notification_id)
    assert received == ["n-1"]
    refusal = refusal_of(caught.value)
    assert (refusal.code, refusal.info.reason, refusal.fields) == (
        CODE.INVALID_ARGUMENT,
        "INVALID_VALUE",
        ["after_sequence"],
    )


def test_the_status_carries_the_code_number_and_grpc_status_the_details_trailer() -> None:
    error = PermissionDenied("no", metadata={"role": "trainer"})
    status = rpc_status_of(error, CODE.PERMISSION_DENIED)
    assert (status.code, status.message) == (7, "no")
    refusal = refusal_from(status, CODE.PERMISSION_DENIED)
    assert (refusal.info.reason, dict(refusal.info.metadata)) == (
        "PERMISSION_DENIED",
        {"role": "trainer"},
    )
    trailer = grpc_status_of(error, CODE.PERMISSION_DENIED)
    assert trailer.code is CODE.PERMISSION_DENIED
    assert [key for key, _ in trailer.trailing_metadata] == ["grpc-status-details-bin"]


def test_a_caller_acting_for_someone_else_is_denied_with_the_default_reason() -> None:
    with pytest.raises(PermissionDenied) as caught:
        Caller("alice", Role.CUSTOMER).require_customer_self_or_manager("bob")
    assert (caught.value.reason, caught.value.metadata) == (
        "PERMISSION_DENIED",
        {"role": "customer"},
    )
