"""The one table from business errors to gRPC status codes."""

from __future__ import annotations

import grpc

from ptkit.auth import PermissionDenied, Unauthenticated
from ptkit.domain import ConcurrencyConflict, IllegalTransition, InvalidValue, NotFound

STATUS_FOR_ERROR: dict[type[Exception], grpc.StatusCode] = {
    InvalidValue: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    ConcurrencyConflict: grpc.StatusCode.ABORTED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def status_for(error: Exception) -> grpc.StatusCode | None:
    """The status code of a known business error (by its nearest base class), else None."""
    for cls in type(error).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return None
