"""CancelSchedule from the public API on an order trainer_svc never heard of is NOT_FOUND
and writes nothing; the cancelled schedule that settles the event race (an order cancelled
before its TrainerAssigned reached trainer_svc) is manager_svc's alone, through the
internal listener."""

from __future__ import annotations

import uuid

import grpc
import pytest

from ptctl.launcher import Platform
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.e2e.rest import Rest
from tests.fault_kit import internal_address, manager_svc_metadata
from tests.helpers import bearer


def schedule_code(platform: Platform, order_id: str) -> grpc.StatusCode:
    """GetSchedule's outcome for the order, read by a manager through the gateway."""
    with grpc.insecure_channel(platform.gateway_address) as channel:
        try:
            trainer_grpc.TrainerServiceStub(channel).GetSchedule(
                trainer.GetScheduleRequest(order_id=order_id),
                metadata=bearer(platform.token("manager", "m-desk")),
                timeout=5,
            )
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def cancelled_order_ids(platform: Platform) -> set[str]:
    reply = Rest(platform.gateway_url).get(
        "/v1/schedules?status=SCHEDULE_STATUS_CANCELLED", platform.token("manager", "m-desk")
    )
    assert reply.status == 200, reply.text
    return {schedule["order_id"] for schedule in reply.json["schedules"]}


@pytest.mark.parametrize("role", ["manager", "trainer", "customer"])
def test_a_public_cancel_of_an_unknown_order_is_not_found_and_writes_nothing(
    platform: Platform, role: str
) -> None:
    order_id = str(uuid.uuid4())
    reply = Rest(platform.gateway_url).post(
        f"/v1/schedules/{order_id}:cancel", platform.token(role, "someone"), {"reason": "probe"}
    )
    status, code, message = reply.error()
    if role == "manager":
        assert (status, code, message) == (404, 5, f"no schedule for order {order_id}")
    else:  # may never cancel: refused before anything is looked up
        assert (status, code) == (403, 7)
    assert schedule_code(platform, order_id) is grpc.StatusCode.NOT_FOUND
    assert order_id not in cancelled_order_ids(platform)


def test_manager_svcs_token_is_not_accepted_by_the_public_gateway(platform: Platform) -> None:
    """The service key signs manager_svc's calls; the gateway trusts only the users' keys,
    so no public caller can act in the service role."""
    (_, token), *_ = manager_svc_metadata(platform)
    order_id = str(uuid.uuid4())
    reply = Rest(platform.gateway_url).post(
        f"/v1/schedules/{order_id}:cancel", token.removeprefix("Bearer "), {"reason": "probe"}
    )
    assert reply.error()[:2] == (401, 16)
    assert schedule_code(platform, order_id) is grpc.StatusCode.NOT_FOUND


def test_manager_svc_records_the_cancellation_ahead_of_the_schedule(platform: Platform) -> None:
    order_id = str(uuid.uuid4())
    with grpc.insecure_channel(internal_address(platform)) as channel:
        cancelled = trainer_grpc.TrainerServiceStub(channel).CancelSchedule(
            trainer.CancelScheduleRequest(order_id=order_id, reason="order cancelled"),
            metadata=manager_svc_metadata(platform),
            timeout=5,
        )
    assert (cancelled.status, cancelled.trainer_id) == (trainer.SCHEDULE_STATUS_CANCELLED, "")
    assert schedule_code(platform, order_id) is grpc.StatusCode.OK
