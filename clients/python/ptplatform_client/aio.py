"""The asyncio variant: :class:`AsyncClient`, over ``grpc.aio`` and the generated async
stubs (``OrderServiceStub(aio_channel)`` is typed as ``OrderServiceAsyncStub``).

Smaller than :class:`~ptplatform_client.Client`: no resource groups, but the same rules
in :meth:`AsyncClient.call` (token, request id, safe retries, typed errors) and
:meth:`AsyncClient.items` for paging::

    async with AsyncClient("127.0.0.1:8080", token=token) as client:
        order = await client.call(
            client.order_service.PlaceOrder,
            order_pb.PlaceOrderRequest(class_name="Yoga", customer_name="Alice"),
        )
        async for mine in client.items(
            client.order_service.ListOrders, order_pb.ListOrdersRequest(), lambda p: p.orders
        ):
            ...
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from ptplatform_client.client import bearer_metadata, new_request_id, open_channel
from ptplatform_client.errors import api_error
from ptplatform_client.paging import next_token
from ptplatform_client.retry import RetryPolicy

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response")
T = TypeVar("T")


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


PageResponse = TypeVar("PageResponse", bound=_Page)


def with_request_id(request: Message) -> bool:
    """Gives a request that has a ``request_id`` field one (a UUID4) unless it is set;
    True when it has one, so that a retry of it is safe."""
    if "request_id" not in request.DESCRIPTOR.fields_by_name:
        return False
    if not getattr(request, "request_id"):  # noqa: B009 (a field of some requests only)
        setattr(request, "request_id", new_request_id())  # noqa: B010
    return True


class AsyncClient:
    """A PtPlatform client over ``grpc.aio``; the arguments are :class:`Client`'s."""

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
            target, secure, credentials, grpc.aio.secure_channel, grpc.aio.insecure_channel
        )
        self._token = token
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.order_service = order_grpc.OrderServiceStub(self.channel)
        self.manager_service = manager_grpc.ManagerServiceStub(self.channel)
        self.trainer_service = trainer_grpc.TrainerServiceStub(self.channel)
        self.status_service = status_grpc.StatusServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(self._token)

    async def call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        *,
        idempotent: bool = False,
    ) -> Response:
        """One unary call. A creation with a ``request_id`` field gets one and is retried
        (docs/client.md); anything else is retried only when ``idempotent`` (pass True for
        Get and List)."""
        retried = with_request_id(request) or idempotent

        async def attempt() -> Response:
            return await method(request, metadata=self.metadata(), timeout=self.timeout_s)

        try:
            return await self.retry.run_async(attempt, idempotent=retried)
        except grpc.RpcError as error:
            raise api_error(error) from error

    async def items(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, PageResponse],
        request: Request,
        of: Callable[[PageResponse], Iterable[T]],
    ) -> AsyncIterator[T]:
        """Every item of a List method, page by page (``request`` is the first page's;
        each next one is a copy with the previous answer's next_page_token)."""
        if "page_token" not in request.DESCRIPTOR.fields_by_name:
            raise TypeError(f"{type(request).__name__} is not a List request")
        token: str | None = ""
        while token is not None:
            page_request = copy.deepcopy(request)
            setattr(page_request, "page_token", token)  # noqa: B010
            page = await self.call(method, page_request, idempotent=True)
            for item in of(page):
                yield item
            token = next_token(page, token)
