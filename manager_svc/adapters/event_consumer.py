"""Inbound event adapter: order and trainer events -> assignment policies."""

from __future__ import annotations

from manager_svc.adapters.sql import SqlManagerUnitOfWork
from manager_svc.application import handlers
from manager_svc.application.ports import ScheduleCanceller, ScheduleCancelUnavailable
from ptkit.events import from_timestamp
from ptkit.sql import Causation
from ptplatform.events.v1 import events_pb2

DURABLE = "manager_svc"
SUBJECTS = ("pt.order.OrderPlaced", "pt.order.OrderCancelled", "pt.trainer.ScheduleConfirmed")
TRANSIENT_ERRORS = (ScheduleCancelUnavailable,)
"""trainer_svc being down or slow never makes an OrderCancelled poison: it is redelivered
(backoff capped at 30 s) until the schedule cancel goes through, however long the outage."""


class ManagerEventHandler:
    def __init__(
        self, uow: SqlManagerUnitOfWork, schedules: ScheduleCanceller, auto_assign: bool
    ) -> None:
        self.uow = uow
        self.schedules = schedules
        self.auto_assign = auto_assign

    async def __call__(self, envelope: events_pb2.EventEnvelope) -> None:
        uow = self.uow.handling(Causation(DURABLE, envelope.event_id))
        match envelope.WhichOneof("payload"):
            case "order_placed":
                placed = envelope.order_placed
                command = handlers.OpenAssignment(
                    order_id=envelope.order_id,
                    customer_id=placed.customer_id,
                    class_name=placed.class_name,
                    preferred_start=from_timestamp(
                        placed.preferred_start, placed.HasField("preferred_start")
                    ),
                )
                await handlers.open_assignment_on_order_placed(command, uow, self.auto_assign)
            case "order_cancelled":
                cancel = handlers.CancelAssignment(
                    order_id=envelope.order_id, reason=envelope.order_cancelled.reason
                )
                await handlers.cancel_assignment_on_order_cancelled(cancel, uow, self.schedules)
            case "schedule_confirmed":
                confirm = handlers.ConfirmAssignment(
                    order_id=envelope.order_id, trainer_id=envelope.schedule_confirmed.trainer_id
                )
                await handlers.confirm_assignment_on_schedule_confirmed(confirm, uow)
