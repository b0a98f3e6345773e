"""How order_svc reacts to the events of other contexts: one line per subscription."""

from __future__ import annotations

from order_svc.application.handlers import (
    CancellationRefused,
    ClassResultRegistered,
    ScheduleConfirmed,
    complete_order_on_cancellation_refused,
    complete_order_on_class_result_registered,
    confirm_order_on_schedule_confirmed,
)
from ptkit.messaging import Policies

POLICIES: Policies = {
    ScheduleConfirmed: confirm_order_on_schedule_confirmed,
    ClassResultRegistered: complete_order_on_class_result_registered,
    CancellationRefused: complete_order_on_cancellation_refused,
}

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = ()
