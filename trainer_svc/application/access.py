"""Who may do what with schedules: trainers work on their own schedules, managers read
any and cancel them; manager_svc (the service role, through the internal listener) cancels
them too, and alone may cancel one that does not exist yet."""

from __future__ import annotations

from ptkit.auth import Caller, Role
from ptkit.validation import require_principal_id
from trainer_svc.domain.model import Schedule, ScheduleNotFound


def may_work_on_schedules(caller: Caller) -> None:
    """Only trainers confirm schedules and register class results."""
    caller.require(Role.TRAINER)


def may_read_schedules(caller: Caller) -> None:
    caller.require(Role.TRAINER, Role.MANAGER)


def may_cancel_schedules(caller: Caller) -> None:
    caller.require(Role.MANAGER, Role.SERVICE)


def may_cancel_before_assignment(caller: Caller, order_id: str) -> None:
    """Only manager_svc, which saw the order cancelled, records the cancellation of a
    schedule that does not exist yet (the event race); for anyone else, a public caller
    among them, an order trainer_svc never heard of is not found, and nothing is written."""
    if caller.role is not Role.SERVICE:
        raise ScheduleNotFound(order_id)


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
