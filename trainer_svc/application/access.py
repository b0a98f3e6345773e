"""Who may do what with schedules: trainers work on their own schedules, managers read
any and cancel them (manager_svc's CancelSchedule call)."""

from __future__ import annotations

from ptkit.auth import Caller, Role
from ptkit.validation import require_principal_id
from trainer_svc.domain.model import Schedule


def may_work_on_schedules(caller: Caller) -> None:
    """Only trainers confirm schedules and register class results."""
    caller.require(Role.TRAINER)


def may_read_schedules(caller: Caller) -> None:
    caller.require(Role.TRAINER, Role.MANAGER)


def may_cancel_schedules(caller: Caller) -> None:
    caller.require(Role.MANAGER)


def may_use(caller: Caller, schedule: Schedule) -> None:
    """A trainer acts on and reads only their own schedules; managers read any."""
    caller.require_trainer_self_or_manager(schedule.trainer_id)


def trainer_to_list(caller: Caller, trainer_id: str) -> str | None:
    """Whose schedules a list is about: trainers may leave it out (their own) and ask
    only for their own; managers list anyone's, or everyone's (None)."""
    may_read_schedules(caller)
    trainer_id = trainer_id or (caller.subject if caller.role is Role.TRAINER else "")
    if not trainer_id:
        return None
    require_principal_id("trainer_id", trainer_id)
    caller.require_trainer_self_or_manager(trainer_id)
    return trainer_id
