"""Inbound gRPC adapter: proto <-> commands, caller authorization, domain -> proto."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime

import grpc

from order_svc.adapters.sql import SqlOrderUnitOfWork
from order_svc.application import handlers
from order_svc.application.ports import PageCursor
from order_svc.domain.model import Order, OrderStatus
from ptkit.auth import Role, current_caller
from ptkit.domain import InvalidValue
from ptkit.events import from_timestamp, to_timestamp
from ptkit.validation import require_principal_id, require_text, require_uuid
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_STATUS = {status: pb.OrderStatus.Value(f"ORDER_STATUS_{status.value}") for status in OrderStatus}


def order_to_proto(order: Order) -> pb.Order:
    return pb.Order(
        order_id=order.order_id,
        customer_id=order.customer_id,
        customer_name=order.customer_name,
        class_name=order.class_name,
        preferred_start=to_timestamp(order.preferred_start),
        status=_STATUS[order.status],
        cancel_reason=order.cancel_reason,
        create_time=to_timestamp(order.created_at),
        update_time=to_timestamp(order.updated_at),
        version=order.version,
    )


def encode_page_token(cursor: PageCursor | None) -> str:
    if cursor is None:
        return ""
    raw = json.dumps([cursor.created_at.isoformat(), cursor.order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str) -> PageCursor | None:
    if not token:
        return None
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return PageCursor(datetime.fromisoformat(created_at), require_uuid("page_token", order_id))
    except (ValueError, TypeError, binascii.Error, InvalidValue):
        raise InvalidValue(
            "page_token is invalid; pass the next_page_token of a previous page"
        ) from None


class OrderServiceAdapter(pb_grpc.OrderServiceServicer):
    def __init__(self, new_uow: Callable[[], SqlOrderUnitOfWork]) -> None:
        self.new_uow = new_uow

    async def _owned_order(self, order_id: str) -> Order:
        order = await handlers.get_order(require_uuid("order_id", order_id), self.new_uow())
        current_caller().require_customer_self_or_manager(order.customer_id)
        return order

    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        caller = current_caller()
        customer_id = request.customer_id or (
            caller.subject if caller.role is Role.CUSTOMER else ""
        )
        require_principal_id("customer_id", customer_id)
        caller.require_customer_self_or_manager(customer_id)
        command = handlers.PlaceOrder(
            customer_id=customer_id,
            customer_name=request.customer_name,
            class_name=request.class_name,
            preferred_start=from_timestamp(
                request.preferred_start, request.HasField("preferred_start")
            ),
            request_id=require_text(
                "request_id", request.request_id, max_length=64, required=False
            ),
        )
        return order_to_proto(await handlers.place_order(command, self.new_uow()))

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        order = await self._owned_order(request.order_id)
        command = handlers.CancelOrder(order_id=order.order_id, reason=request.reason)
        return order_to_proto(await handlers.cancel_order(command, self.new_uow()))

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        return order_to_proto(await self._owned_order(request.order_id))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrdersResponse:
        caller = current_caller()
        customer_id = request.customer_id or (
            caller.subject if caller.role is Role.CUSTOMER else ""
        )
        if customer_id:
            require_principal_id("customer_id", customer_id)
            caller.require_customer_self_or_manager(customer_id)
        else:
            caller.require(Role.MANAGER)
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise InvalidValue(f"page_size must be between 0 and {MAX_PAGE_SIZE}")
        page = await handlers.list_orders(
            customer_id or None,
            request.page_size or DEFAULT_PAGE_SIZE,
            decode_page_token(request.page_token),
            self.new_uow(),
        )
        return pb.ListOrdersResponse(
            orders=[order_to_proto(order) for order in page.orders],
            next_page_token=encode_page_token(page.next_cursor),
        )
