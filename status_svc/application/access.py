"""Who may read what of the order statuses: customers their own orders, trainers the
orders they hold, managers any."""

from __future__ import annotations

from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.validation import require_principal_id
from status_svc.application.ports import StatusFilter
from status_svc.domain.model import AssignmentStatus, OrderStatus, OrderStatusView


def may_read(caller: Caller, view: OrderStatusView) -> None:
    """Customers read their own orders, trainers the orders they hold, managers any."""
    match caller.role:
        case Role.MANAGER:
            allowed = True
        case Role.CUSTOMER:
            allowed = view.customer_id == caller.subject
        case Role.TRAINER:
            allowed = view.trainer_id == caller.subject
    if not allowed:
        raise PermissionDenied(
            f"{caller.role.value} {caller.subject!r} may not read order {view.order_id}",
            metadata={"role": caller.role.value},
        )


def customer_to_read(caller: Caller, customer_id: str) -> str:
    """The customer a per-customer call is about: customers may leave it out (their own)
    and ask only for their own; managers must name one; trainers may not ask."""
    return caller.customer_to_act_for(customer_id)


def _optional_id(field: str, value: str | None) -> str | None:
    return require_principal_id(field, value) if value else None


def status_filter(
    caller: Caller,
    customer_id: str | None,
    trainer_id: str | None,
    order_status: OrderStatus | None,
    assignment_status: AssignmentStatus | None = None,
) -> StatusFilter:
    """Managers filter freely; customers see only their own orders and trainers only
    the orders they hold (asking for someone else's is refused)."""
    customer_id = _optional_id("customer_id", customer_id)
    trainer_id = _optional_id("trainer_id", trainer_id)
    if caller.role is Role.CUSTOMER:
        caller.require_customer_self_or_manager(caller.customer_or_own(customer_id or ""))
        customer_id = caller.subject
    elif caller.role is Role.TRAINER:
        caller.require_trainer_self_or_manager(trainer_id or caller.subject)
        trainer_id = caller.subject
    return StatusFilter(
        customer_id=customer_id,
        trainer_id=trainer_id,
        order_status=order_status,
        assignment_status=assignment_status,
    )
