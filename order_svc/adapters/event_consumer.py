"""Inbound event adapter: trainer events -> order policies."""

from __future__ import annotations

from order_svc.adapters.sql import SqlOrderUnitOfWork
from order_svc.application import handlers
from ptkit.sql import Causation
from ptplatform.events.v1 import events_pb2

DURABLE = "order_svc"
SUBJECTS = ("pt.trainer.ScheduleConfirmed", "pt.trainer.ClassResultRegistered")


class OrderEventHandler:
    def __init__(self, uow: SqlOrderUnitOfWork) -> None:
        self.uow = uow

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        uow = self.uow.handling(Causation(DURABLE, envelope.event_id))
        match envelope.WhichOneof("payload"):
            case "schedule_confirmed":
                await handlers.confirm_order_on_schedule_confirmed(envelope.order_id, uow)
            case "class_result_registered":
                await handlers.complete_order_on_class_result_registered(envelope.order_id, uow)
