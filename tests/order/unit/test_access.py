"""Who may do what with orders (order_svc/application/access.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from order_svc.application import access
from order_svc.domain.model import Order
from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue

ALICE = Caller("alice", Role.CUSTOMER)
BOB = Caller("bob", Role.CUSTOMER)
MANAGER = Caller("m-1", Role.MANAGER)
TRAINER = Caller("kim", Role.TRAINER)
ALICES = Order.place(
    order_id="o-1",
    customer_id="alice",
    customer_name="Alice",
    class_name="Pilates",
    preferred_start=None,
    request_id="",
    now=datetime(2026, 1, 1, tzinfo=UTC),
)


def test_a_customer_orders_for_themselves_by_default() -> None:
    assert access.customer_to_order_for(ALICE, "") == "alice"
    assert access.customer_to_order_for(ALICE, "alice") == "alice"


def test_a_customer_may_not_order_for_another_customer() -> None:
    with pytest.raises(PermissionDenied, match="customer 'alice' may not act for customer 'bob'"):
        access.customer_to_order_for(ALICE, "bob")


def test_a_manager_orders_for_the_customer_they_name() -> None:
    assert access.customer_to_order_for(MANAGER, "bob") == "bob"
    with pytest.raises(InvalidValue, match="customer_id is required"):
        access.customer_to_order_for(MANAGER, "")


def test_the_customer_id_is_checked_before_who_may_use_it() -> None:
    with pytest.raises(InvalidValue, match="customer_id ' bad id ' is invalid"):
        access.customer_to_order_for(ALICE, " bad id ")


def test_trainers_place_no_orders() -> None:
    with pytest.raises(InvalidValue, match="customer_id is required"):
        access.customer_to_order_for(TRAINER, "")
    with pytest.raises(PermissionDenied, match="needs customer or manager"):
        access.customer_to_order_for(TRAINER, "alice")


def test_a_customer_uses_only_their_own_order_a_manager_any() -> None:
    access.may_use(ALICE, ALICES)
    access.may_use(MANAGER, ALICES)
    with pytest.raises(PermissionDenied, match="customer 'bob' may not act for customer 'alice'"):
        access.may_use(BOB, ALICES)
    with pytest.raises(PermissionDenied, match="needs customer or manager"):
        access.may_use(TRAINER, ALICES)


def test_a_customer_lists_their_own_orders_by_default() -> None:
    assert access.customer_to_list(ALICE, "") == "alice"
    assert access.customer_to_list(ALICE, "alice") == "alice"
    with pytest.raises(PermissionDenied, match="may not act for customer 'bob'"):
        access.customer_to_list(ALICE, "bob")


def test_a_manager_lists_anyones_or_everyones_orders() -> None:
    assert access.customer_to_list(MANAGER, "") is None
    assert access.customer_to_list(MANAGER, "bob") == "bob"
    with pytest.raises(InvalidValue, match="customer_id"):
        access.customer_to_list(MANAGER, " bad id ")


def test_only_managers_list_everyones_orders() -> None:
    with pytest.raises(PermissionDenied, match="needs manager"):
        access.customer_to_list(TRAINER, "")
    with pytest.raises(PermissionDenied, match="needs customer or manager"):
        access.customer_to_list(TRAINER, "alice")
