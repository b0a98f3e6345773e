"""How trainer_svc reacts to the events of other contexts: one line per subscription."""

from __future__ import annotations

from ptkit.messaging import Policies
from trainer_svc.application.handlers import TrainerAssigned, open_schedule_on_trainer_assigned

POLICIES: Policies = {
    TrainerAssigned: open_schedule_on_trainer_assigned,
}

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = ()
