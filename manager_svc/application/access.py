"""Who may do what with the roster and the assignments: managers register trainers and
assign them; trainers and managers read the roster and the assignments, a trainer only
the assignments they hold."""

from __future__ import annotations

from manager_svc.domain.model import Assignment
from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.validation import require_uuid


def may_manage(caller: Caller) -> None:
    """Only managers register trainers and assign them to orders."""
    caller.require(Role.MANAGER)


def may_read(caller: Caller) -> None:
    """Managers and trainers read the roster and the assignments; customers do not."""
    caller.require(Role.MANAGER, Role.TRAINER)


def may_read_assignment(caller: Caller, assignment: Assignment) -> None:
    """A trainer reads only the assignment they hold; a manager any."""
    if caller.role is Role.TRAINER and assignment.trainer_id != caller.subject:
        raise PermissionDenied(
            f"trainer {caller.subject!r} is not assigned to order {assignment.order_id}",
            metadata={"role": caller.role.value},
        )


def trainer_to_list(caller: Caller, trainer_id: str) -> str | None:
    """Whose assignments a list is about: trainers may leave it out (their own) and ask
    only for their own; managers list anyone's, or everyone's (None)."""
    may_read(caller)
    trainer_id = require_uuid("trainer_id", trainer_id) if trainer_id else ""
    if caller.role is Role.TRAINER:
        trainer_id = trainer_id or caller.subject
        caller.require_trainer_self_or_manager(trainer_id)
    return trainer_id or None
