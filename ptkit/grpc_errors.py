"""The one table from business errors to gRPC status codes, and the structured status
(AIP-193) every refused call answers with.

A refusal is a ``google.rpc.Status``: the code from :data:`STATUS_FOR_ERROR`, the
error's message, an ``ErrorInfo`` (the error's ``reason``, the platform's domain, its
``metadata``) and, when the error names a request field, a ``BadRequest`` with one field
violation (the field, the message as its description, the same reason). grpcio-status
puts it in the ``grpc-status-details-bin`` trailer, which Envoy's transcoder renders as
the ``details`` of an HTTP caller's JSON body.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ptkit.auth import PermissionDenied, Unauthenticated
from ptkit.domain import (
    ConcurrencyConflict,
    DomainError,
    IllegalTransition,
    InvalidValue,
    LimitReached,
    NotFound,
)

ERROR_DOMAIN = "ptplatform.dev"
"""ErrorInfo.domain of every error the platform's services make."""


class InternalError(DomainError):
    """What a caller learns of a bug: nothing but that it happened (the service logs it)."""

    default_reason = "INTERNAL"

    def __init__(self) -> None:
        super().__init__("internal error")


STATUS_FOR_ERROR: dict[type[Exception], grpc.StatusCode] = {
    InvalidValue: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    ConcurrencyConflict: grpc.StatusCode.ABORTED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    LimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
    InternalError: grpc.StatusCode.INTERNAL,
}


def status_for(error: BaseException) -> grpc.StatusCode | None:
    """The status code of a known business error (by its nearest base class), else None."""
    return code_for(type(error))


def code_for(error_type: type[BaseException]) -> grpc.StatusCode | None:
    """The status code of an error class (by its nearest base class in the table)."""
    for cls in error_type.__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return None


def rpc_status_of(error: DomainError, code: grpc.StatusCode) -> status_pb2.Status:
    """The ``google.rpc.Status`` a client gets for ``error``."""
    message = str(error) or type(error).__name__
    details = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
        )
    ]
    if error.field:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.field, description=message, reason=error.reason
        )
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    return status_pb2.Status(
        code=code.value[0], message=message, details=[_packed(d) for d in details]
    )


def grpc_status_of(error: DomainError, code: grpc.StatusCode) -> grpc.Status:
    """``error`` as grpcio's status: code, message and the details trailer."""
    return rpc_status.to_status(rpc_status_of(error, code))


def _packed(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
