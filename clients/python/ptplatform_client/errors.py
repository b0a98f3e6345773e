"""A failed call as a typed exception, with the details of its ``google.rpc.Status``.

The platform answers errors with a ``google.rpc.Status`` (AIP-193) in the
``grpc-status-details-bin`` trailer: an ``ErrorInfo`` (reason, domain, metadata) and, for
bad input, a ``BadRequest`` naming the fields. grpcio-status decodes it; a call without
details still gives an :class:`ApiError` with its code and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    """The path of the field, as the API names it (``customer_id``, ``start_time``)."""
    description: str


@dataclass(eq=False)
class ApiError(Exception):
    """A call the platform refused or could not answer."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    """``ErrorInfo.reason``, e.g. ``ORDER_NOT_FOUND``: what to branch on, not the message."""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()
    status: status_pb2.Status | None = field(default=None, repr=False)
    """The whole ``google.rpc.Status``, when the server sent one."""

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        for violation in self.field_violations:
            text += f"; {violation.field}: {violation.description}"
        return text

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the ``BadRequest`` detail names."""
        return tuple(violation.field for violation in self.field_violations)


class InvalidArgument(ApiError):
    """INVALID_ARGUMENT: the request is wrong; ``field_violations`` says where."""


class NotFound(ApiError):
    """NOT_FOUND."""


class AlreadyExists(ApiError):
    """ALREADY_EXISTS."""


class FailedPrecondition(ApiError):
    """FAILED_PRECONDITION: refused by a business rule (e.g. the class was already held)."""


class PermissionDenied(ApiError):
    """PERMISSION_DENIED: the caller's role or identity does not allow this."""


class Unauthenticated(ApiError):
    """UNAUTHENTICATED: no valid bearer token."""


class ResourceExhausted(ApiError):
    """RESOURCE_EXHAUSTED: rate limited."""


class Unavailable(ApiError):
    """UNAVAILABLE: try again later (retried by the client when that is safe)."""


class DeadlineExceeded(ApiError):
    """DEADLINE_EXCEEDED."""


_BY_CODE: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


Call = grpc.Call | grpc.aio.AioRpcError
"""A finished call, of the blocking or the asyncio API: a code, details, trailers."""


def api_error(error: grpc.RpcError) -> ApiError:
    """The :class:`ApiError` (or its subclass for the code) of a failed call."""
    call = error if isinstance(error, grpc.Call | grpc.aio.AioRpcError) else None
    code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
    message = (call.details() if call is not None else None) or ""
    status = _rich_status(call)
    if status is None:
        return _BY_CODE.get(code, ApiError)(code, message)
    reason, domain, metadata, violations = "", "", {}, []
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):  # False: the detail is of another type
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Unpack(bad):
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return _BY_CODE.get(code, ApiError)(
        code,
        status.message or message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=tuple(violations),
        status=status,
    )


def _rich_status(call: Call | None) -> status_pb2.Status | None:
    if call is None:
        return None
    try:
        # an AioRpcError has the finished call's code, details and trailers as a grpc.Call
        status: status_pb2.Status | None = rpc_status.from_call(cast(grpc.Call, call))
    except ValueError:  # details that contradict the code or message: not trusted
        return None
    return status
