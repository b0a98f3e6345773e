"""Inbound gRPC adapter: proto -> commands (with the caller), domain -> proto."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from order_svc.adapters.sql import SqlOrderUnitOfWork
from order_svc.application import handlers
from order_svc.domain.model import Order, OrderStatus
from ptkit.auth import current_caller
from ptkit.events import from_timestamp, to_timestamp
from ptkit.idempotency import idempotency_key
from ptkit.paging import PageTokens
from ptkit.validation import require_uuid
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc

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
        cancellation_refused_reason=order.cancellation_refused_reason,
        create_time=to_timestamp(order.created_at),
        update_time=to_timestamp(order.updated_at),
        version=order.version,
    )


class OrderServiceAdapter(pb_grpc.OrderServiceServicer):
    def __init__(self, new_uow: Callable[[], SqlOrderUnitOfWork], page_tokens: PageTokens) -> None:
        self.new_uow = new_uow
        self.page_tokens = page_tokens

    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        command = handlers.PlaceOrder(
            customer_id=request.customer_id,
            customer_name=request.customer_name,
            class_name=request.class_name,
            preferred_start=from_timestamp(
                request.preferred_start, request.HasField("preferred_start")
            ),
            request_id=idempotency_key(request.request_id),
            caller=current_caller(),
        )
        return order_to_proto(await handlers.place_order(command, self.new_uow()))

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        command = handlers.CancelOrder(
            order_id=require_uuid("order_id", request.order_id),
            reason=request.reason,
            caller=current_caller(),
        )
        return order_to_proto(await handlers.cancel_order(command, self.new_uow()))

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.Order:
        query = handlers.GetOrder(require_uuid("order_id", request.order_id), current_caller())
        return order_to_proto(await handlers.get_order(query, self.new_uow()))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrdersResponse:
        query = handlers.ListOrders(
            customer_id=request.customer_id,
            caller=current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        page = await handlers.list_orders(query, self.new_uow(), self.page_tokens)
        return pb.ListOrdersResponse(
            orders=[order_to_proto(order) for order in page.items],
            next_page_token=page.next_page_token,
        )
