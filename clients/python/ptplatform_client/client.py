"""The client: one channel to the gateway, the bearer token on every call, request ids
on creations, safe retries, List methods as iterators, errors as :class:`ApiError`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from types import TracebackType
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ptplatform.manager.v1 import manager_service_pb2 as manager_pb
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order_pb
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status_pb
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer_pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from ptplatform_client import paging
from ptplatform_client.errors import api_error
from ptplatform_client.retry import RetryPolicy

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)
C = TypeVar("C")

USER_AGENT = "ptplatform-client/0.1.0"


def new_request_id() -> str:
    """A request id for a creation (AIP-155: a UUID4)."""
    return str(uuid.uuid4())


def open_channel(
    target: str,
    secure: bool,
    credentials: grpc.ChannelCredentials | None,
    open_secure: Callable[..., C],
    open_insecure: Callable[..., C],
) -> C:
    """A channel to ``target`` (TLS with ``credentials`` or the system's roots, if
    ``secure``), opened by grpc's or grpc.aio's functions: both clients' channel."""
    options = [("grpc.primary_user_agent", USER_AGENT)]
    if secure:
        return open_secure(target, credentials or grpc.ssl_channel_credentials(), options=options)
    return open_insecure(target, options=options)


def bearer_metadata(token: str | Callable[[], str] | None) -> tuple[tuple[str, str], ...]:
    """The call's metadata: the bearer token, asked for again if it is a function."""
    value = token() if callable(token) else token
    return (("authorization", f"Bearer {value}"),) if value else ()


def timestamp(value: datetime) -> Timestamp:
    """A timezone-aware datetime as a protobuf Timestamp."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant: give it a timezone")
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class Client:
    """A PtPlatform client over gRPC, through the gateway (``127.0.0.1:8080`` under
    ``make run``).

    ``token`` is the bearer JWT (``ptctl token`` prints a development one), or a function
    returning the current one, asked again for every call (a token that refreshes).
    ``secure`` opens a TLS channel (``credentials``, or the system's roots). Each call
    attempt has ``timeout_s``; ``retry`` says how idempotent calls are retried.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | Callable[[], str] | None = None,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.channel = open_channel(
            target, secure, credentials, grpc.secure_channel, grpc.insecure_channel
        )
        self._token = token
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.orders = Orders(self)
        self.trainers = Trainers(self)
        self.assignments = Assignments(self)
        self.schedules = Schedules(self)
        self.status = Status(self)

    # -- the channel ---------------------------------------------------------------------
    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(self._token)

    def call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        *,
        idempotent: bool,
    ) -> Response:
        """One unary call: retried (when ``idempotent``) by the retry policy, a failure
        raised as :class:`~ptplatform_client.errors.ApiError`."""

        def attempt() -> Response:
            return method(request, metadata=self.metadata(), timeout=self.timeout_s)

        try:
            return self.retry.run(attempt, idempotent=idempotent)
        except grpc.RpcError as error:
            raise api_error(error) from error


class Orders:
    """OrderService: a customer's enrolments in PT classes."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = order_grpc.OrderServiceStub(client.channel)

    def place(
        self,
        *,
        class_name: str,
        customer_name: str,
        preferred_start: datetime | None = None,
        customer_id: str = "",
        request_id: str | None = None,
    ) -> order_pb.Order:
        """Places an order; retried safely, as the request id (a new UUID4 unless given)
        makes the platform return the first attempt's order. Pass your own request id to
        make a retry of your own (after a crash, say) safe as well."""
        request = order_pb.PlaceOrderRequest(
            customer_id=customer_id,
            customer_name=customer_name,
            class_name=class_name,
            preferred_start=timestamp(preferred_start) if preferred_start else None,
            request_id=request_id or new_request_id(),
        )
        return self._client.call(self.stub.PlaceOrder, request, idempotent=True)

    def cancel(self, order_id: str, reason: str = "") -> order_pb.Order:
        """Cancels an order. Sent once, never retried."""
        request = order_pb.CancelOrderRequest(order_id=order_id, reason=reason)
        return self._client.call(self.stub.CancelOrder, request, idempotent=False)

    def get(self, order_id: str) -> order_pb.Order:
        request = order_pb.GetOrderRequest(order_id=order_id)
        return self._client.call(self.stub.GetOrder, request, idempotent=True)

    def list(self, customer_id: str = "", *, page_size: int = 0) -> Iterator[order_pb.Order]:
        """Every order of the customer (a customer's own when left out), page by page."""

        def fetch(token: str) -> order_pb.ListOrdersResponse:
            request = order_pb.ListOrdersRequest(
                customer_id=customer_id, page_size=page_size, page_token=token
            )
            return self._client.call(self.stub.ListOrders, request, idempotent=True)

        return paging.items(fetch, lambda page: page.orders)


class Trainers:
    """ManagerService's trainer roster."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = manager_grpc.ManagerServiceStub(client.channel)

    def register(self, name: str, *, request_id: str | None = None) -> manager_pb.Trainer:
        """Registers a trainer; retried safely with its request id (a new UUID4 unless
        given)."""
        request = manager_pb.RegisterTrainerRequest(
            name=name, request_id=request_id or new_request_id()
        )
        return self._client.call(self.stub.RegisterTrainer, request, idempotent=True)

    def list(self, *, page_size: int = 0) -> Iterator[manager_pb.Trainer]:
        def fetch(token: str) -> manager_pb.ListTrainersResponse:
            request = manager_pb.ListTrainersRequest(page_size=page_size, page_token=token)
            return self._client.call(self.stub.ListTrainers, request, idempotent=True)

        return paging.items(fetch, lambda page: page.trainers)


class Assignments:
    """ManagerService's assignments of trainers to orders."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = manager_grpc.ManagerServiceStub(client.channel)

    def assign(self, order_id: str, trainer_id: str) -> manager_pb.Assignment:
        """Assigns a trainer. Sent once, never retried."""
        request = manager_pb.AssignTrainerRequest(order_id=order_id, trainer_id=trainer_id)
        return self._client.call(self.stub.AssignTrainer, request, idempotent=False)

    def get(self, order_id: str) -> manager_pb.Assignment:
        request = manager_pb.GetAssignmentRequest(order_id=order_id)
        return self._client.call(self.stub.GetAssignment, request, idempotent=True)

    def list(
        self,
        *,
        status: manager_pb.AssignmentStatus.ValueType = manager_pb.ASSIGNMENT_STATUS_UNSPECIFIED,
        trainer_id: str = "",
        page_size: int = 0,
    ) -> Iterator[manager_pb.Assignment]:
        def fetch(token: str) -> manager_pb.ListAssignmentsResponse:
            request = manager_pb.ListAssignmentsRequest(
                status=status, trainer_id=trainer_id, page_size=page_size, page_token=token
            )
            return self._client.call(self.stub.ListAssignments, request, idempotent=True)

        return paging.items(fetch, lambda page: page.assignments)


class Schedules:
    """TrainerService: the trainers' schedules and class results."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = trainer_grpc.TrainerServiceStub(client.channel)

    def confirm(
        self, order_id: str, start_time: datetime, duration_minutes: int
    ) -> trainer_pb.Schedule:
        """Confirms the schedule (the trainer). Sent once, never retried."""
        request = trainer_pb.ConfirmScheduleRequest(
            order_id=order_id,
            start_time=timestamp(start_time),
            duration_minutes=duration_minutes,
        )
        return self._client.call(self.stub.ConfirmSchedule, request, idempotent=False)

    def register_result(self, order_id: str, result: str) -> trainer_pb.Schedule:
        """Registers the class result (the trainer). Sent once, never retried."""
        request = trainer_pb.RegisterClassResultRequest(order_id=order_id, result=result)
        return self._client.call(self.stub.RegisterClassResult, request, idempotent=False)

    def cancel(self, order_id: str, reason: str = "") -> trainer_pb.Schedule:
        """Cancels the schedule (a manager). Sent once, never retried."""
        request = trainer_pb.CancelScheduleRequest(order_id=order_id, reason=reason)
        return self._client.call(self.stub.CancelSchedule, request, idempotent=False)

    def get(self, order_id: str) -> trainer_pb.Schedule:
        request = trainer_pb.GetScheduleRequest(order_id=order_id)
        return self._client.call(self.stub.GetSchedule, request, idempotent=True)

    def list(
        self,
        *,
        trainer_id: str = "",
        status: trainer_pb.ScheduleStatus.ValueType = trainer_pb.SCHEDULE_STATUS_UNSPECIFIED,
        page_size: int = 0,
    ) -> Iterator[trainer_pb.Schedule]:
        def fetch(token: str) -> trainer_pb.ListSchedulesResponse:
            request = trainer_pb.ListSchedulesRequest(
                trainer_id=trainer_id, status=status, page_size=page_size, page_token=token
            )
            return self._client.call(self.stub.ListSchedules, request, idempotent=True)

        return paging.items(fetch, lambda page: page.schedules)


class Status:
    """StatusService: the read side (order views, class results, notifications)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.stub = status_grpc.StatusServiceStub(client.channel)

    def get_order(self, order_id: str) -> status_pb.OrderStatus:
        request = status_pb.GetOrderStatusRequest(order_id=order_id)
        return self._client.call(self.stub.GetOrderStatus, request, idempotent=True)

    def list_orders(
        self,
        *,
        customer_id: str = "",
        trainer_id: str = "",
        order_status: order_pb.OrderStatus.ValueType = order_pb.ORDER_STATUS_UNSPECIFIED,
        page_size: int = 0,
    ) -> Iterator[status_pb.OrderStatus]:
        def fetch(token: str) -> status_pb.ListOrderStatusesResponse:
            request = status_pb.ListOrderStatusesRequest(
                customer_id=customer_id,
                trainer_id=trainer_id,
                order_status=order_status,
                page_size=page_size,
                page_token=token,
            )
            return self._client.call(self.stub.ListOrderStatuses, request, idempotent=True)

        return paging.items(fetch, lambda page: page.statuses)

    def class_results(
        self, customer_id: str, *, page_size: int = 0
    ) -> Iterator[status_pb.ClassResult]:
        def fetch(token: str) -> status_pb.ListClassResultsResponse:
            request = status_pb.ListClassResultsRequest(
                customer_id=customer_id, page_size=page_size, page_token=token
            )
            return self._client.call(self.stub.ListClassResults, request, idempotent=True)

        return paging.items(fetch, lambda page: page.results)

    def notifications(
        self, customer_id: str, *, page_size: int = 0
    ) -> Iterator[status_pb.Notification]:
        def fetch(token: str) -> status_pb.ListNotificationsResponse:
            request = status_pb.ListNotificationsRequest(
                customer_id=customer_id, page_size=page_size, page_token=token
            )
            return self._client.call(self.stub.ListNotifications, request, idempotent=True)

        return paging.items(fetch, lambda page: page.notifications)

    def watch_notifications(
        self, customer_id: str, *, after_sequence: int | None = None
    ) -> Iterator[status_pb.Notification]:
        """The customer's notifications as they are recorded, without end. A broken
        stream (UNAVAILABLE) is opened again from the last notification received, so none
        is missed or repeated; the retry policy bounds the attempts in a row that bring
        nothing. ``after_sequence``: replay what came after it first (0: everything)."""
        client, failures = self._client, 0
        while True:
            request = status_pb.WatchNotificationsRequest(customer_id=customer_id)
            if after_sequence is not None:
                request.after_sequence = after_sequence
            try:
                for notification in self.stub.WatchNotifications(
                    request, metadata=client.metadata()
                ):
                    failures = 0
                    after_sequence = notification.sequence
                    yield notification
                return
            except grpc.RpcError as error:
                failures += 1
                code = error.code() if isinstance(error, grpc.Call) else None
                if code is not grpc.StatusCode.UNAVAILABLE or failures >= client.retry.attempts:
                    raise api_error(error) from error
            client.retry.sleep(failures)
