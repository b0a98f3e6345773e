"""Who may do what with schedules (trainer_svc/application/access.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ptkit.auth import Caller, PermissionDenied, Role
from ptkit.domain import InvalidValue
from trainer_svc.application import access
from trainer_svc.domain.model import Schedule, ScheduleNotFound

KIM = Caller("kim", Role.TRAINER)
LEE = Caller("lee", Role.TRAINER)
MANAGER = Caller("m-1", Role.MANAGER)
CUSTOMER = Caller("alice", Role.CUSTOMER)
MANAGER_SVC = Caller("manager_svc", Role.SERVICE)
KIMS = Schedule.request(
    order_id="o-1",
    trainer_id="kim",
    customer_id="alice",
    class_name="Pilates",
    assignment_version=1,
    now=datetime(2026, 1, 1, tzinfo=UTC),
)


def test_only_trainers_confirm_schedules_and_register_results() -> None:
    access.may_work_on_schedules(KIM)
    for caller in (MANAGER, CUSTOMER):
        with pytest.raises(PermissionDenied, match="needs trainer"):
            access.may_work_on_schedules(caller)


def test_a_trainer_uses_only_their_own_schedule() -> None:
    access.may_use(KIM, KIMS)
    access.may_use(MANAGER, KIMS)
    with pytest.raises(PermissionDenied, match="trainer 'lee' may not act for trainer 'kim'"):
        access.may_use(LEE, KIMS)


def test_customers_read_no_schedules() -> None:
    access.may_read_schedules(KIM)
    access.may_read_schedules(MANAGER)
    with pytest.raises(PermissionDenied):
        access.may_read_schedules(CUSTOMER)


def test_only_managers_and_manager_svc_cancel_schedules() -> None:
    access.may_cancel_schedules(MANAGER)
    access.may_cancel_schedules(MANAGER_SVC)
    with pytest.raises(PermissionDenied, match="needs manager or service"):
        access.may_cancel_schedules(KIM)


def test_only_manager_svc_cancels_a_schedule_that_does_not_exist_yet() -> None:
    access.may_cancel_before_assignment(MANAGER_SVC, "o-1")
    for caller in (MANAGER, KIM, CUSTOMER):
        with pytest.raises(ScheduleNotFound, match="o-1"):
            access.may_cancel_before_assignment(caller, "o-1")


def test_the_service_role_reads_and_works_on_no_schedules() -> None:
    with pytest.raises(PermissionDenied):
        access.may_read_schedules(MANAGER_SVC)
    with pytest.raises(PermissionDenied):
        access.may_work_on_schedules(MANAGER_SVC)


def test_a_trainer_lists_their_own_schedules_by_default() -> None:
    assert access.trainer_to_list(KIM, "") == "kim"
    assert access.trainer_to_list(KIM, "kim") == "kim"
    with pytest.raises(PermissionDenied):
        access.trainer_to_list(KIM, "lee")


def test_a_manager_lists_anyones_or_everyones_schedules() -> None:
    assert access.trainer_to_list(MANAGER, "") is None
    assert access.trainer_to_list(MANAGER, "lee") == "lee"
    with pytest.raises(InvalidValue):
        access.trainer_to_list(MANAGER, " bad id ")
    with pytest.raises(PermissionDenied):
        access.trainer_to_list(CUSTOMER, "")
