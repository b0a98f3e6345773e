"""How status_svc reacts to the events of other contexts: every event it observes
updates the order's view; a class result and a refused cancellation also notify the
customer."""

from __future__ import annotations

from ptkit.messaging import Policies
from status_svc.application.handlers import (
    notify_customer_on_cancellation_refused,
    notify_customer_on_class_result_registered,
    update_view_on_event,
)
from status_svc.domain.events import (
    AssignmentCancelled,
    CancellationRefused,
    ClassResultRegistered,
    OrderCancelled,
    OrderCompleted,
    OrderConfirmed,
    OrderPlaced,
    ScheduleCancelled,
    ScheduleConfirmed,
    TrainerAssigned,
)

POLICIES: Policies = {
    OrderPlaced: update_view_on_event,
    OrderCancelled: update_view_on_event,
    OrderConfirmed: update_view_on_event,
    OrderCompleted: update_view_on_event,
    TrainerAssigned: update_view_on_event,
    AssignmentCancelled: update_view_on_event,
    ScheduleConfirmed: update_view_on_event,
    ScheduleCancelled: update_view_on_event,
    ClassResultRegistered: notify_customer_on_class_result_registered,
    CancellationRefused: notify_customer_on_cancellation_refused,
}

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = ()
