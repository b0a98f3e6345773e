"""The internal listener (manager_svc -> trainer_svc): Envoy routes CancelSchedule only,
and only for a token of the service role signed with the service key. Every other method
is UNIMPLEMENTED there; no token, a bad one and a user's token (signed with the users'
key, which the internal listener does not trust) are UNAUTHENTICATED at Envoy, before
trainer_svc sees the call; RBAC on the route also wants the role ``service``."""

from __future__ import annotations

import uuid

import grpc
import pytest

from ptctl.launcher import Platform
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.fault_kit import internal_address, manager_svc_metadata
from tests.helpers import bearer


def cancel(platform: Platform, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    with grpc.insecure_channel(internal_address(platform)) as channel:
        try:
            trainer_grpc.TrainerServiceStub(channel).CancelSchedule(
                trainer.CancelScheduleRequest(order_id=str(uuid.uuid4()), reason="probe"),
                metadata=metadata,
                timeout=5,
            )
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_manager_svcs_service_token_cancels_a_schedule(platform: Platform) -> None:
    assert cancel(platform, manager_svc_metadata(platform)) is grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("caller", "code"),
    [
        ("no token", grpc.StatusCode.UNAUTHENTICATED),
        ("not a token", grpc.StatusCode.UNAUTHENTICATED),
        ("manager", grpc.StatusCode.UNAUTHENTICATED),
        ("customer", grpc.StatusCode.UNAUTHENTICATED),
    ],
)
def test_a_call_without_the_service_token_is_refused_at_envoy(
    platform: Platform, caller: str, code: grpc.StatusCode
) -> None:
    metadata = {
        "no token": (),
        "not a token": bearer("not.a.token"),
        "manager": bearer(platform.token("manager", "internal-probe")),
        "customer": bearer(platform.token("customer", "internal-probe")),
    }[caller]
    assert cancel(platform, tuple(metadata)) is code


def test_no_other_method_is_routed(platform: Platform) -> None:
    service = manager_svc_metadata(platform)
    order_id = str(uuid.uuid4())
    with grpc.insecure_channel(internal_address(platform)) as channel:
        stub = trainer_grpc.TrainerServiceStub(channel)
        calls = [
            lambda: stub.GetSchedule(
                trainer.GetScheduleRequest(order_id=order_id), metadata=service, timeout=5
            ),
            lambda: stub.ListSchedules(trainer.ListSchedulesRequest(), metadata=service, timeout=5),
            lambda: stub.ConfirmSchedule(
                trainer.ConfirmScheduleRequest(order_id=order_id, duration_minutes=60),
                metadata=service,
                timeout=5,
            ),
            lambda: stub.RegisterClassResult(
                trainer.RegisterClassResultRequest(order_id=order_id, result="x"),
                metadata=service,
                timeout=5,
            ),
        ]
        codes = []
        for call in calls:
            with pytest.raises(grpc.RpcError) as refused:
                call()
            codes.append(refused.value.code())
    assert codes == [grpc.StatusCode.UNIMPLEMENTED] * len(calls)
