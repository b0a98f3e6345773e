"""The typed Python client of PtPlatform's public API.

    from ptplatform_client import Client

    with Client("127.0.0.1:8080", token=token) as client:
        order = client.orders.place(
            class_name="Pilates 1:1", customer_name="Alice", preferred_start=start
        )
        for mine in client.orders.list():
            print(mine.order_id, mine.status)

The generated messages and stubs are in ``ptplatform.<context>.v1`` (installed with it).
"""

from ptplatform_client.aio import AsyncClient
from ptplatform_client.client import Client, new_request_id, timestamp
from ptplatform_client.errors import (
    AlreadyExists,
    ApiError,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    api_error,
)
from ptplatform_client.retry import NO_RETRY, RetryPolicy

__all__ = [
    "NO_RETRY",
    "AlreadyExists",
    "ApiError",
    "AsyncClient",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RetryPolicy",
    "Unauthenticated",
    "Unavailable",
    "api_error",
    "new_request_id",
    "timestamp",
]
