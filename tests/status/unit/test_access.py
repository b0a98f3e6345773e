"""Who may read what of the order statuses (status_svc/application/access.py)."""

from __future__ import annotations

import pytest

from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue
from status_svc.application import access
from status_svc.application.ports import StatusFilter
from status_svc.domain.model import OrderStatus, OrderStatusView

ALICE = Caller("alice", Role.CUSTOMER)
BOB = Caller("bob", Role.CUSTOMER)
KIM = Caller("t-kim", Role.TRAINER)
LEE = Caller("t-lee", Role.TRAINER)
MANAGER = Caller("m-1", Role.MANAGER)
ALICES_WITH_KIM = OrderStatusView(order_id="o-1", customer_id="alice", trainer_id="t-kim")


def test_customers_read_their_own_orders_trainers_the_ones_they_hold() -> None:
    for caller in (ALICE, KIM, MANAGER):
        access.may_read(caller, ALICES_WITH_KIM)
    for caller, name in ((BOB, "customer 'bob'"), (LEE, "trainer 't-lee'")):
        with pytest.raises(PermissionDenied, match=f"{name} may not read order o-1"):
            access.may_read(caller, ALICES_WITH_KIM)


def test_a_customer_reads_their_own_results_and_notifications_by_default() -> None:
    assert access.customer_to_read(ALICE, "") == "alice"
    assert access.customer_to_read(ALICE, "alice") == "alice"
    with pytest.raises(PermissionDenied, match="customer 'alice' may not act for customer 'bob'"):
        access.customer_to_read(ALICE, "bob")


def test_a_manager_names_the_customer_a_trainer_may_not_ask() -> None:
    assert access.customer_to_read(MANAGER, "bob") == "bob"
    with pytest.raises(InvalidValue, match="customer_id is required"):
        access.customer_to_read(MANAGER, "")
    with pytest.raises(PermissionDenied, match="needs customer or manager"):
        access.customer_to_read(KIM, "alice")


def test_a_manager_filters_statuses_freely() -> None:
    assert access.status_filter(MANAGER, "bob", "t-lee", OrderStatus.PLACED) == StatusFilter(
        customer_id="bob", trainer_id="t-lee", order_status=OrderStatus.PLACED
    )
    assert access.status_filter(MANAGER, "", "", None) == StatusFilter()
    with pytest.raises(InvalidValue, match="customer_id"):
        access.status_filter(MANAGER, " bad id ", "", None)


def test_a_customer_lists_only_their_own_statuses() -> None:
    assert access.status_filter(ALICE, "", "t-kim", None) == StatusFilter(
        customer_id="alice", trainer_id="t-kim"
    )
    with pytest.raises(PermissionDenied, match="may not act for customer 'bob'"):
        access.status_filter(ALICE, "bob", "", None)


def test_a_trainer_lists_only_the_statuses_they_hold() -> None:
    assert access.status_filter(KIM, "alice", "", None) == StatusFilter(
        customer_id="alice", trainer_id="t-kim"
    )
    with pytest.raises(PermissionDenied, match="may not act for trainer 't-lee'"):
        access.status_filter(KIM, "", "t-lee", None)
