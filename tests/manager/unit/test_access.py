"""Who may do what with the roster and the assignments (manager_svc/application/access.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from manager_svc.application import access
from manager_svc.domain.model import Assignment
from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue

KIM_ID = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"
LEE_ID = "0c6f2a1e-9d7b-4e59-8a0f-3f1d2c4b5a69"
KIM = Caller(KIM_ID, Role.TRAINER)
LEE = Caller(LEE_ID, Role.TRAINER)
MANAGER = Caller("m-1", Role.MANAGER)
CUSTOMER = Caller("alice", Role.CUSTOMER)
KIMS = dataclasses.replace(
    Assignment.open(
        order_id="o-1",
        customer_id="alice",
        class_name="Pilates",
        preferred_start=None,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    ),
    trainer_id=KIM_ID,
)


def test_only_managers_register_and_assign_trainers() -> None:
    access.may_manage(MANAGER)
    for caller in (KIM, CUSTOMER):
        with pytest.raises(PermissionDenied, match="needs manager"):
            access.may_manage(caller)


def test_managers_and_trainers_read_customers_do_not() -> None:
    access.may_read(MANAGER)
    access.may_read(KIM)
    with pytest.raises(PermissionDenied, match="role 'customer' may not do this"):
        access.may_read(CUSTOMER)


def test_a_trainer_reads_only_the_assignment_they_hold() -> None:
    access.may_read_assignment(KIM, KIMS)
    access.may_read_assignment(MANAGER, KIMS)
    with pytest.raises(PermissionDenied, match=f"trainer '{LEE_ID}' is not assigned to order o-1"):
        access.may_read_assignment(LEE, KIMS)


def test_a_trainer_lists_their_own_assignments_by_default() -> None:
    assert access.trainer_to_list(KIM, "") == KIM_ID
    assert access.trainer_to_list(KIM, KIM_ID) == KIM_ID
    with pytest.raises(PermissionDenied, match="may not act for trainer"):
        access.trainer_to_list(KIM, LEE_ID)


def test_a_manager_lists_anyones_or_everyones_assignments() -> None:
    assert access.trainer_to_list(MANAGER, "") is None
    assert access.trainer_to_list(MANAGER, LEE_ID) == LEE_ID
    with pytest.raises(InvalidValue, match="trainer_id 'k!m' is not a valid id"):
        access.trainer_to_list(MANAGER, "k!m")


def test_customers_list_no_assignments_whatever_they_ask() -> None:
    for trainer_id in ("", "k!m"):
        with pytest.raises(PermissionDenied, match="role 'customer' may not do this"):
            access.trainer_to_list(CUSTOMER, trainer_id)
