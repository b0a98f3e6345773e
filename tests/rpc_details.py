"""What a gRPC client reads of a refusal: the google.rpc.Status and its details."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "ptplatform.dev"


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo
    violations: list[error_details_pb2.BadRequest.FieldViolation]

    @property
    def fields(self) -> list[str]:
        return [violation.field for violation in self.violations]


def refusal_of(error: grpc.aio.AioRpcError) -> Refusal:
    """The structured status of a failed call; fails unless it carries exactly one
    ErrorInfo of the platform's domain and at most one BadRequest."""
    status = rpc_status.from_call(error)
    assert status is not None, (error.code(), error.details())
    return refusal_from(status, error.code())


def refusal_from(status: status_pb2.Status, code: grpc.StatusCode) -> Refusal:
    infos, requests = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            requests.append(bad)
        else:
            raise AssertionError(f"unexpected detail {detail.type_url}")
    assert len(infos) == 1 and len(requests) <= 1, status
    assert infos[0].domain == DOMAIN
    violations = list(requests[0].field_violations) if requests else []
    return Refusal(code, status.message, infos[0], violations)
