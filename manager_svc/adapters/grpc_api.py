"""Inbound gRPC adapter: proto -> commands (with the caller), domain -> proto."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from manager_svc.adapters.sql import SqlManagerUnitOfWork
from manager_svc.application import handlers
from manager_svc.domain.model import Assignment, AssignmentStatus
from manager_svc.domain.roster import Trainer
from ptkit.auth import current_caller
from ptkit.domain import InvalidValue
from ptkit.events import to_timestamp
from ptkit.idempotency import idempotency_key
from ptkit.paging import PageTokens
from ptkit.validation import require_uuid
from ptplatform.manager.v1 import manager_service_pb2 as pb
from ptplatform.manager.v1 import manager_service_pb2_grpc as pb_grpc

_STATUS = {
    status: pb.AssignmentStatus.Value(f"ASSIGNMENT_STATUS_{status.value}")
    for status in AssignmentStatus
}
_STATUS_OF_PROTO = {value: status for status, value in _STATUS.items()}


def trainer_to_proto(trainer: Trainer) -> pb.Trainer:
    return pb.Trainer(trainer_id=trainer.trainer_id, name=trainer.name, active=trainer.active)


def assignment_to_proto(assignment: Assignment) -> pb.Assignment:
    return pb.Assignment(
        order_id=assignment.order_id,
        customer_id=assignment.customer_id,
        class_name=assignment.class_name,
        trainer_id=assignment.trainer_id,
        trainer_name=assignment.trainer_name,
        status=_STATUS[assignment.status],
        preferred_start=to_timestamp(assignment.preferred_start),
        update_time=to_timestamp(assignment.updated_at),
        version=assignment.version,
        cancel_reason=assignment.cancel_reason,
        schedule_note=assignment.schedule_note,
        cancellation_refused_reason=assignment.cancellation_refused_reason,
    )


def status_filter(value: int) -> AssignmentStatus | None:
    """The status to list by; UNSPECIFIED lists every status."""
    if value == pb.ASSIGNMENT_STATUS_UNSPECIFIED:
        return None
    if value not in _STATUS_OF_PROTO:
        raise InvalidValue(f"status {value} is not an assignment status", field="status")
    return _STATUS_OF_PROTO[value]


class ManagerServiceAdapter(pb_grpc.ManagerServiceServicer):
    def __init__(
        self, new_uow: Callable[[], SqlManagerUnitOfWork], page_tokens: PageTokens
    ) -> None:
        self.new_uow = new_uow
        self.page_tokens = page_tokens

    async def RegisterTrainer(
        self, request: pb.RegisterTrainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Trainer:
        command = handlers.RegisterTrainer(
            name=request.name,
            caller=current_caller(),
            request_id=idempotency_key(request.request_id),
        )
        return trainer_to_proto(await handlers.register_trainer(command, self.new_uow()))

    async def ListTrainers(
        self, request: pb.ListTrainersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTrainersResponse:
        query = handlers.ListTrainers(
            caller=current_caller(), page_size=request.page_size, page_token=request.page_token
        )
        page = await handlers.list_trainers(query, self.new_uow(), self.page_tokens)
        return pb.ListTrainersResponse(
            trainers=[trainer_to_proto(trainer) for trainer in page.items],
            next_page_token=page.next_page_token,
        )

    async def AssignTrainer(
        self, request: pb.AssignTrainerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Assignment:
        command = handlers.AssignTrainer(
            order_id=require_uuid("order_id", request.order_id),
            trainer_id=require_uuid("trainer_id", request.trainer_id),
            caller=current_caller(),
        )
        return assignment_to_proto(await handlers.assign_trainer(command, self.new_uow()))

    async def GetAssignment(
        self, request: pb.GetAssignmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Assignment:
        query = handlers.GetAssignment(require_uuid("order_id", request.order_id), current_caller())
        return assignment_to_proto(await handlers.get_assignment(query, self.new_uow()))

    async def ListAssignments(
        self, request: pb.ListAssignmentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAssignmentsResponse:
        query = handlers.ListAssignments(
            status=status_filter(request.status),
            trainer_id=request.trainer_id,
            caller=current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        page = await handlers.list_assignments(query, self.new_uow(), self.page_tokens)
        return pb.ListAssignmentsResponse(
            assignments=[assignment_to_proto(a) for a in page.items],
            next_page_token=page.next_page_token,
        )
