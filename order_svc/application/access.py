"""Who may do what with orders: customers place, read and cancel their own orders;
managers act for any customer and alone list everyone's orders."""

from __future__ import annotations

from order_svc.domain.model import Order
from ptkit.auth import Caller, Role
from ptkit.validation import require_principal_id


def customer_to_order_for(caller: Caller, customer_id: str) -> str:
    """Whom an order is placed for: a customer may leave it out (their own) and name
    only their own; a manager names the customer; trainers place no orders."""
    return caller.customer_to_act_for(customer_id)


def may_use(caller: Caller, order: Order) -> None:
    """A customer reads and cancels only their own order; a manager any."""
    caller.require_customer_self_or_manager(order.customer_id)


def customer_to_list(caller: Caller, customer_id: str) -> str | None:
    """Whose orders a list is about: customers may leave it out (their own) and ask only
    for their own; managers list anyone's, or everyone's (None)."""
    customer_id = caller.customer_or_own(customer_id)
    if not customer_id:
        caller.require(Role.MANAGER)
        return None
    require_principal_id("customer_id", customer_id)
    caller.require_customer_self_or_manager(customer_id)
    return customer_id
