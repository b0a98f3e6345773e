"""manager_svc's gRPC API on a real server: input checks, error codes, authorization."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest

from manager_svc.adapters import sql
from manager_svc.adapters.grpc_api import ManagerServiceAdapter
from manager_svc.application import handlers
from manager_svc.application.ports import ScheduleCancelRefused
from ptkit.auth import Caller, Role
from ptkit.events import EnvelopeSerializer
from ptkit.paging import PageTokens
from ptkit.server import registration
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.manager.v1 import manager_service_pb2 as pb
from ptplatform.manager.v1 import manager_service_pb2_grpc as pb_grpc
from tests.helpers import bearer, database, serving
from tests.rpc_details import refusal_of

START = datetime(2025, 3, 10, 18, 0, tzinfo=UTC)
MANAGER = (Role.MANAGER, "manager-1")
CUSTOMER = (Role.CUSTOMER, "customer-1")
MANAGER_CALLER = Caller("manager-1", Role.MANAGER)


@dataclass
class ManagerApi:
    stub: pb_grpc.ManagerServiceStub
    uow: sql.SqlManagerUnitOfWork
    keys: KeyFiles

    def auth(self, role: Role, subject: str) -> tuple[tuple[str, str]]:
        return bearer(mint_token(self.keys, role, subject))

    async def trainer(self, name: str = "Kim", *, active: bool = True) -> str:
        trainer = await handlers.register_trainer(
            handlers.RegisterTrainer(name, MANAGER_CALLER), self.uow
        )
        if not active:
            async with self.uow:
                (await self.uow.trainers.get(trainer.trainer_id)).deactivate()
                await self.uow.commit()
        return trainer.trainer_id

    async def placed_order(self, trainer_id: str = "") -> str:
        order_id = str(uuid.uuid4())
        command = handlers.OrderPlaced(order_id, "customer-1", "Pilates", START)
        await handlers.open_assignment_on_order_placed(command, self.uow)
        if trainer_id:
            await handlers.assign_trainer(
                handlers.AssignTrainer(order_id, trainer_id, MANAGER_CALLER), self.uow
            )
        return order_id


@pytest.fixture(scope="module")
async def api(
    keys: KeyFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ManagerApi]:
    url = f"sqlite:///{tmp_path_factory.mktemp('manager') / 'manager.db'}"
    async with database(url, sql.metadata) as engine:

        def new_uow() -> sql.SqlManagerUnitOfWork:
            return sql.SqlManagerUnitOfWork(engine, sql.messaging, EnvelopeSerializer("manager"))

        adapter = ManagerServiceAdapter(new_uow, PageTokens.development())
        service = pb.DESCRIPTOR.services_by_name["ManagerService"]
        add = pb_grpc.add_ManagerServiceServicer_to_server
        async with serving(registration(service, add, adapter), keys, "manager_svc") as channel:
            yield ManagerApi(pb_grpc.ManagerServiceStub(channel), new_uow(), keys)


async def assert_rejected(call: object, code: grpc.StatusCode, message: str) -> None:
    """The call fails with ``code`` and a message that says ``message``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    assert message in (caught.value.details() or "")


# -- authentication -------------------------------------------------------------------------


async def test_call_without_token_is_unauthenticated(api: ManagerApi) -> None:
    await assert_rejected(
        api.stub.ListTrainers(pb.ListTrainersRequest()), grpc.StatusCode.UNAUTHENTICATED, "bearer"
    )


# -- RegisterTrainer ------------------------------------------------------------------------


async def test_manager_registers_an_active_trainer(api: ManagerApi) -> None:
    trainer = await api.stub.RegisterTrainer(
        pb.RegisterTrainerRequest(name=" Kim Jiho "), metadata=api.auth(*MANAGER)
    )
    assert (trainer.name, trainer.active, str(uuid.UUID(trainer.trainer_id))) == (
        "Kim Jiho",
        True,
        trainer.trainer_id,
    )


@pytest.mark.parametrize(
    ("name", "message"), [("", "name must not be empty"), ("x" * 101, "name is too long")]
)
async def test_register_trainer_with_a_bad_name_is_invalid(
    api: ManagerApi, name: str, message: str
) -> None:
    call = api.stub.RegisterTrainer(
        pb.RegisterTrainerRequest(name=name), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, message)


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.TRAINER])
async def test_only_a_manager_registers_trainers(api: ManagerApi, role: Role) -> None:
    call = api.stub.RegisterTrainer(
        pb.RegisterTrainerRequest(name="Kim"), metadata=api.auth(role, "someone")
    )
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "needs manager")


async def test_the_same_request_id_registers_the_trainer_once(api: ManagerApi) -> None:
    request_id = str(uuid.uuid4())
    request = pb.RegisterTrainerRequest(name="Once", request_id=request_id)
    first = await api.stub.RegisterTrainer(request, metadata=api.auth(*MANAGER))
    again = await api.stub.RegisterTrainer(request, metadata=api.auth(*MANAGER))
    other = await api.stub.RegisterTrainer(request, metadata=api.auth(Role.MANAGER, "manager-2"))
    assert again.trainer_id == first.trainer_id
    assert other.trainer_id != first.trainer_id
    roster = await api.stub.ListTrainers(
        pb.ListTrainersRequest(page_size=100), metadata=api.auth(*MANAGER)
    )
    assert [t.name for t in roster.trainers].count("Once") == 2


async def test_without_request_id_the_gateways_retry_registers_the_trainer_once(
    api: ManagerApi,
) -> None:
    request = pb.RegisterTrainerRequest(name="Retried")
    gateway = (("x-request-id", str(uuid.uuid4())),)
    first = await api.stub.RegisterTrainer(request, metadata=api.auth(*MANAGER) + gateway)
    retried = await api.stub.RegisterTrainer(request, metadata=api.auth(*MANAGER) + gateway)
    assert retried.trainer_id == first.trainer_id


async def test_a_request_id_that_is_not_a_uuid_is_invalid(api: ManagerApi) -> None:
    call = api.stub.RegisterTrainer(
        pb.RegisterTrainerRequest(name="Kim", request_id="retry-1"), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "request_id")


# -- ListTrainers ---------------------------------------------------------------------------


async def test_the_roster_pages_by_name_and_refuses_a_tampered_token(api: ManagerApi) -> None:
    for n in range(5):
        await api.trainer(f"Paged {n}")
    names, token = [], ""
    while True:
        page = await api.stub.ListTrainers(
            pb.ListTrainersRequest(page_size=2, page_token=token), metadata=api.auth(*MANAGER)
        )
        assert len(page.trainers) <= 2
        names += [t.name for t in page.trainers]
        if not (token := page.next_page_token):
            break
        tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        call = api.stub.ListTrainers(
            pb.ListTrainersRequest(page_token=tampered), metadata=api.auth(*MANAGER)
        )
        await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    assert names == sorted(names)
    assert [n for n in names if n.startswith("Paged")] == [f"Paged {n}" for n in range(5)]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.TRAINER])
async def test_managers_and_trainers_list_the_roster(api: ManagerApi, role: Role) -> None:
    trainer_id = await api.trainer("Roster")
    response = await api.stub.ListTrainers(
        pb.ListTrainersRequest(), metadata=api.auth(role, "someone")
    )
    assert trainer_id in [t.trainer_id for t in response.trainers]


async def test_customer_may_not_list_trainers(api: ManagerApi) -> None:
    call = api.stub.ListTrainers(pb.ListTrainersRequest(), metadata=api.auth(*CUSTOMER))
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "customer")


# -- AssignTrainer --------------------------------------------------------------------------


async def test_manager_assigns_and_reassigns_a_trainer(api: ManagerApi) -> None:
    kim, lee = await api.trainer("Kim"), await api.trainer("Lee")
    order_id = await api.placed_order()
    first = await api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=kim), metadata=api.auth(*MANAGER)
    )
    second = await api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=lee), metadata=api.auth(*MANAGER)
    )
    assert (first.status, first.trainer_name) == (pb.ASSIGNMENT_STATUS_TRAINER_ASSIGNED, "Kim")
    assert (second.trainer_id, second.trainer_name, second.version > first.version) == (
        lee,
        "Lee",
        True,
    )


@pytest.mark.parametrize(
    ("order_id", "trainer_id", "message"),
    [
        ("", str(uuid.uuid4()), "order_id is required"),
        ("not-a-uuid", str(uuid.uuid4()), "order_id 'not-a-uuid' is not a valid id"),
        (str(uuid.uuid4()), "", "trainer_id is required"),
        (str(uuid.uuid4()), "t-1", "trainer_id 't-1' is not a valid id"),
    ],
)
async def test_assign_trainer_with_malformed_ids_is_invalid(
    api: ManagerApi, order_id: str, trainer_id: str, message: str
) -> None:
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=trainer_id),
        metadata=api.auth(*MANAGER),
    )
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, message)


async def test_assign_trainer_to_an_unknown_order_is_not_found(api: ManagerApi) -> None:
    kim, order_id = await api.trainer(), str(uuid.uuid4())
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=kim), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.NOT_FOUND, f"no assignment for order {order_id}")


async def test_assign_an_unknown_trainer_is_not_found(api: ManagerApi) -> None:
    order_id, trainer_id = await api.placed_order(), str(uuid.uuid4())
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=trainer_id),
        metadata=api.auth(*MANAGER),
    )
    await assert_rejected(call, grpc.StatusCode.NOT_FOUND, f"trainer {trainer_id} not found")


async def test_assign_an_inactive_trainer_is_refused(api: ManagerApi) -> None:
    gone, order_id = await api.trainer("Gone", active=False), await api.placed_order()
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=gone), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.FAILED_PRECONDITION, "is not active")


async def test_assign_trainer_to_a_cancelled_order_is_refused(api: ManagerApi) -> None:
    kim, order_id = await api.trainer(), str(uuid.uuid4())
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled(order_id, "oops"), api.uow, NoSchedule()
    )
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=kim), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.FAILED_PRECONDITION, "is cancelled")


async def test_reassigning_a_confirmed_order_is_refused(api: ManagerApi) -> None:
    kim, lee = await api.trainer("Kim"), await api.trainer("Lee")
    order_id = await api.placed_order(kim)
    await handlers.confirm_assignment_on_schedule_confirmed(
        handlers.ScheduleConfirmed(order_id, kim), api.uow
    )
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=lee), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.FAILED_PRECONDITION, "already confirmed")


async def test_trainer_may_not_assign_themselves(api: ManagerApi) -> None:
    kim = await api.trainer()
    order_id = await api.placed_order()
    call = api.stub.AssignTrainer(
        pb.AssignTrainerRequest(order_id=order_id, trainer_id=kim),
        metadata=api.auth(Role.TRAINER, kim),
    )
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "needs manager")


# -- GetAssignment --------------------------------------------------------------------------


async def test_manager_and_the_assigned_trainer_read_an_assignment(api: ManagerApi) -> None:
    kim = await api.trainer()
    order_id = await api.placed_order(kim)
    for caller in (MANAGER, (Role.TRAINER, kim)):
        assignment = await api.stub.GetAssignment(
            pb.GetAssignmentRequest(order_id=order_id), metadata=api.auth(*caller)
        )
        assert (assignment.order_id, assignment.trainer_id, assignment.class_name) == (
            order_id,
            kim,
            "Pilates",
        )
        assert assignment.preferred_start.ToDatetime(tzinfo=UTC) == START


async def test_another_trainer_may_not_read_the_assignment(api: ManagerApi) -> None:
    kim, lee = await api.trainer("Kim"), await api.trainer("Lee")
    order_id = await api.placed_order(kim)
    call = api.stub.GetAssignment(
        pb.GetAssignmentRequest(order_id=order_id), metadata=api.auth(Role.TRAINER, lee)
    )
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "is not assigned to order")


async def test_customer_may_not_read_assignments(api: ManagerApi) -> None:
    order_id = await api.placed_order()
    call = api.stub.GetAssignment(
        pb.GetAssignmentRequest(order_id=order_id), metadata=api.auth(*CUSTOMER)
    )
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "customer")


@pytest.mark.parametrize(
    ("order_id", "message"), [("", "order_id is required"), ("o-1", "not a valid id")]
)
async def test_get_assignment_with_a_malformed_id_is_invalid(
    api: ManagerApi, order_id: str, message: str
) -> None:
    call = api.stub.GetAssignment(
        pb.GetAssignmentRequest(order_id=order_id), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, message)


async def test_get_unknown_assignment_is_not_found(api: ManagerApi) -> None:
    order_id = str(uuid.uuid4())
    call = api.stub.GetAssignment(
        pb.GetAssignmentRequest(order_id=order_id), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(call, grpc.StatusCode.NOT_FOUND, f"no assignment for order {order_id}")


async def test_refused_schedule_cancellation_is_visible_on_the_assignment(api: ManagerApi) -> None:
    kim = await api.trainer()
    order_id = await api.placed_order(kim)
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled(order_id, "moved"), api.uow, HeldClass()
    )
    assignment = await api.stub.GetAssignment(
        pb.GetAssignmentRequest(order_id=order_id), metadata=api.auth(*MANAGER)
    )
    # the class was held: the assignment is not cancelled, the refusal is recorded (ADR 0007)
    assert (
        assignment.status,
        assignment.cancel_reason,
        assignment.cancellation_refused_reason,
        assignment.schedule_note,
    ) == (
        pb.ASSIGNMENT_STATUS_TRAINER_ASSIGNED,
        "",
        "class already held",
        "schedule not cancelled: class already held",
    )


# -- ListAssignments ------------------------------------------------------------------------


async def test_manager_lists_assignments_by_status_and_trainer(api: ManagerApi) -> None:
    kim = await api.trainer()
    assigned, waiting = await api.placed_order(kim), await api.placed_order()
    by_trainer = await api.stub.ListAssignments(
        pb.ListAssignmentsRequest(trainer_id=kim), metadata=api.auth(*MANAGER)
    )
    by_status = await api.stub.ListAssignments(
        pb.ListAssignmentsRequest(status=pb.ASSIGNMENT_STATUS_AWAITING_TRAINER),
        metadata=api.auth(*MANAGER),
    )
    assert [a.order_id for a in by_trainer.assignments] == [assigned]
    assert waiting in [a.order_id for a in by_status.assignments]
    assert {a.status for a in by_status.assignments} == {pb.ASSIGNMENT_STATUS_AWAITING_TRAINER}


async def test_trainer_lists_only_own_assignments(api: ManagerApi) -> None:
    kim, lee = await api.trainer("Kim"), await api.trainer("Lee")
    mine = await api.placed_order(kim)
    await api.placed_order(lee)
    response = await api.stub.ListAssignments(
        pb.ListAssignmentsRequest(), metadata=api.auth(Role.TRAINER, kim)
    )
    assert [a.order_id for a in response.assignments] == [mine]
    call = api.stub.ListAssignments(
        pb.ListAssignmentsRequest(trainer_id=lee), metadata=api.auth(Role.TRAINER, kim)
    )
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "may not act for trainer")


async def test_customer_may_not_list_assignments(api: ManagerApi) -> None:
    call = api.stub.ListAssignments(pb.ListAssignmentsRequest(), metadata=api.auth(*CUSTOMER))
    await assert_rejected(call, grpc.StatusCode.PERMISSION_DENIED, "customer")


async def test_list_assignments_with_bad_filters_is_invalid(api: ManagerApi) -> None:
    bad_status = api.stub.ListAssignments(
        pb.ListAssignmentsRequest(status=99), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(
        bad_status, grpc.StatusCode.INVALID_ARGUMENT, "status 99 is not an assignment status"
    )
    bad_trainer = api.stub.ListAssignments(
        pb.ListAssignmentsRequest(trainer_id="k!m"), metadata=api.auth(*MANAGER)
    )
    await assert_rejected(
        bad_trainer, grpc.StatusCode.INVALID_ARGUMENT, "trainer_id 'k!m' is not a valid id"
    )


class NoSchedule:
    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        raise AssertionError("no schedule should be cancelled")


class HeldClass:
    async def cancel_schedule(self, order_id: str, reason: str) -> None:
        raise ScheduleCancelRefused("class already held")


# -- structured errors (AIP-193) ------------------------------------------------------------


async def refusal(call: object) -> tuple[str, list[str], dict[str, str]]:
    """(ErrorInfo reason, BadRequest fields, ErrorInfo metadata) of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    refused = refusal_of(caught.value)
    return refused.info.reason, refused.fields, dict(refused.info.metadata)


async def test_an_assignment_refusal_says_which_thing_is_missing_or_in_the_way(
    api: ManagerApi,
) -> None:
    kim, gone = await api.trainer("Kim"), await api.trainer("Gone", active=False)
    order_id, unknown = await api.placed_order(), str(uuid.uuid4())
    cancelled = str(uuid.uuid4())
    await handlers.cancel_assignment_on_order_cancelled(
        handlers.OrderCancelled(cancelled, "oops"), api.uow, NoSchedule()
    )

    def assign(order: str, trainer: str) -> object:
        request = pb.AssignTrainerRequest(order_id=order, trainer_id=trainer)
        return api.stub.AssignTrainer(request, metadata=api.auth(*MANAGER))

    assert await refusal(assign(unknown, kim)) == (
        "ASSIGNMENT_NOT_FOUND",
        [],
        {"order_id": unknown},
    )
    assert await refusal(assign(order_id, unknown)) == (
        "TRAINER_NOT_FOUND",
        [],
        {"trainer_id": unknown},
    )
    assert await refusal(assign(order_id, gone)) == ("TRAINER_INACTIVE", [], {"trainer_id": gone})
    assert await refusal(assign(cancelled, kim)) == (
        "ASSIGNMENT_CLOSED",
        [],
        {"order_id": cancelled},
    )
    assert await refusal(assign("nope", kim)) == ("INVALID_ID", ["order_id"], {})


async def test_a_trainer_name_with_a_control_character_names_the_field(api: ManagerApi) -> None:
    call = api.stub.RegisterTrainer(
        pb.RegisterTrainerRequest(name="Kim\x1b[2J"), metadata=api.auth(*MANAGER)
    )
    reason, fields, metadata = await refusal(call)
    assert (reason, fields, metadata) == (
        "INVALID_CHARACTERS",
        ["name"],
        {"character": "U+001B", "position": "3"},
    )


async def test_a_customer_registering_a_trainer_is_told_the_roles_that_may(
    api: ManagerApi,
) -> None:
    call = api.stub.RegisterTrainer(
        pb.RegisterTrainerRequest(name="Kim"), metadata=api.auth(*CUSTOMER)
    )
    assert await refusal(call) == (
        "ROLE_NOT_ALLOWED",
        [],
        {"role": "customer", "allowed_roles": "manager"},
    )
