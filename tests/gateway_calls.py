"""The calls a load makes through the gateway: reads of every service, and creations
with a request id whose results are kept (request id -> what it made), so a test can
check afterwards that each made exactly one record."""

from __future__ import annotations

import uuid

import grpc

from ptctl.pages import every_page
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.e2e.rest import Rest
from tests.helpers import bearer


class GatewayCalls:
    """Calls of a customer and a manager through the gateway, each a function of no
    arguments (for :class:`tests.load.CallLoad`), and what the creations made."""

    def __init__(
        self,
        channel: grpc.Channel,
        gateway_url: str,
        customer_token: str,
        manager_token: str,
        read_metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.customer_token = customer_token
        self.customer = bearer(customer_token)
        self.read_metadata = read_metadata
        """Sent with GetOrder besides the token."""
        self.rest = Rest(gateway_url)
        self.manager = bearer(manager_token)
        self.orders = order_grpc.OrderServiceStub(channel)
        self.managers = manager_grpc.ManagerServiceStub(channel)
        self.trainers = trainer_grpc.TrainerServiceStub(channel)
        self.views = status_grpc.StatusServiceStub(channel)
        self.placed: dict[str, str] = {}
        """request id -> order id, of every PlaceOrder answered."""
        self.registered: dict[str, str] = {}
        """request id -> trainer id."""
        self.first = self.orders.PlaceOrder(self.order_request(), metadata=self.customer)

    def order_request(self, request_id: str = "") -> order.PlaceOrderRequest:
        return order.PlaceOrderRequest(
            customer_name="Failover", class_name="Pilates 1:1", request_id=request_id
        )

    def place_order(self) -> None:
        request_id = str(uuid.uuid4())
        placed = self.orders.PlaceOrder(self.order_request(request_id), metadata=self.customer)
        self.placed[request_id] = placed.order_id

    def get_order(self) -> None:
        self.orders.GetOrder(
            order.GetOrderRequest(order_id=self.first.order_id),
            metadata=self.customer + self.read_metadata,
        )

    def get_order_over_rest(self) -> None:
        reply = self.rest.call("GET", f"/v1/orders/{self.first.order_id}", self.customer_token)
        if reply.status != 200:
            raise RuntimeError(f"GET /v1/orders/{{order_id}}: {reply.status} {reply.text}")

    def place_order_over_rest(self) -> None:
        request_id = str(uuid.uuid4())
        body = {"customer_name": "Failover", "class_name": "Pilates 1:1", "request_id": request_id}
        reply = self.rest.call("POST", "/v1/orders", self.customer_token, body)
        if reply.status != 200:
            raise RuntimeError(f"POST /v1/orders: {reply.status} {reply.text}")
        self.placed[request_id] = reply.json["order_id"]

    def list_orders(self) -> None:
        self.orders.ListOrders(order.ListOrdersRequest(page_size=5), metadata=self.customer)

    def register_trainer(self) -> None:
        request_id = str(uuid.uuid4())
        request = manager.RegisterTrainerRequest(name=f"Coach {request_id}", request_id=request_id)
        self.registered[request_id] = self.managers.RegisterTrainer(
            request, metadata=self.manager
        ).trainer_id

    def list_trainers(self) -> None:
        self.managers.ListTrainers(manager.ListTrainersRequest(page_size=5), metadata=self.manager)

    def list_schedules(self) -> None:
        self.trainers.ListSchedules(
            trainer.ListSchedulesRequest(page_size=5), metadata=self.manager
        )

    def list_statuses(self) -> None:
        self.views.ListOrderStatuses(
            status.ListOrderStatusesRequest(page_size=5), metadata=self.manager
        )

    def orders_listed(self) -> list[order.Order]:
        return list(
            every_page(
                lambda page: self.orders.ListOrders(page, metadata=self.customer),
                order.ListOrdersRequest(),
                "orders",
            )
        )
