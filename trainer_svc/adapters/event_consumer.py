"""Inbound event adapter: manager events -> trainer policies."""

from __future__ import annotations

from ptkit.sql import Causation
from ptplatform.events.v1 import events_pb2
from trainer_svc.adapters.sql import SqlTrainerUnitOfWork
from trainer_svc.application import handlers

DURABLE = "trainer_svc"
SUBJECTS = ("pt.manager.TrainerAssigned",)


def trainer_assigned(envelope: events_pb2.EventEnvelope) -> handlers.TrainerAssigned:
    payload = envelope.trainer_assigned
    return handlers.TrainerAssigned(
        order_id=envelope.order_id,
        trainer_id=payload.trainer_id,
        customer_id=payload.customer_id,
        class_name=payload.class_name,
        assignment_version=envelope.aggregate_version,
    )


class TrainerEventHandler:
    def __init__(self, uow: SqlTrainerUnitOfWork) -> None:
        self.uow = uow

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        uow = self.uow.handling(Causation(DURABLE, envelope.event_id))
        match envelope.WhichOneof("payload"):
            case "trainer_assigned":
                await handlers.open_schedule_on_trainer_assigned(trainer_assigned(envelope), uow)
