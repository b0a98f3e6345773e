"""How manager_svc reacts to the events of other contexts: one line per subscription."""

from __future__ import annotations

from manager_svc.application.handlers import (
    OrderCancelled,
    OrderPlaced,
    ScheduleConfirmed,
    cancel_assignment_on_order_cancelled,
    confirm_assignment_on_schedule_confirmed,
    open_assignment_on_order_placed,
)
from manager_svc.application.ports import ScheduleCancelUnavailable
from ptkit.messaging import Policies, runs_alone

POLICIES: Policies = {
    OrderPlaced: open_assignment_on_order_placed,
    # asks trainer_svc to cancel the schedule: never inside a batch's open transaction
    OrderCancelled: runs_alone(cancel_assignment_on_order_cancelled),
    ScheduleConfirmed: confirm_assignment_on_schedule_confirmed,
}

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ScheduleCancelUnavailable,)
"""trainer_svc being down or slow never makes an OrderCancelled poison: it is redelivered
(backoff capped at 30 s) until the schedule cancel goes through, however long the outage."""
