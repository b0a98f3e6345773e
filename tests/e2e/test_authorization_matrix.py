"""Who may call what: every public method x every kind of caller, through the gateway.

The three token columns are Envoy's jwt_authn at work; the five identity columns are the
services' authorization from the verified claims (``ptkit.auth.Caller`` in each
``adapters/grpc_api.py``). "self" is the customer who owns the data or the trainer who
holds the schedule; the world below is built so that every allowed call really succeeds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ptctl.launcher import Platform
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.e2e.rest import Rest, expired_token, token_signed_by_another_key
from tests.helpers import bearer, wait_for

# Rows: every public method, under its service. Columns: the caller. none = no token,
# forged = a token signed by a key nobody trusts, expired = an expired token; cust/trn =
# a customer/trainer, .self = who owns the data (alice; trainer T), .other = someone else.
# Cells: ok, unauth = UNAUTHENTICATED (Envoy), denied = PERMISSION_DENIED (the service).
MATRIX = """
                      none    forged  expired  cust.self  cust.other  trn.self  trn.other  manager
OrderService
  PlaceOrder          unauth  unauth  unauth   ok         denied      denied    denied     ok
  CancelOrder         unauth  unauth  unauth   ok         denied      denied    denied     ok
  GetOrder            unauth  unauth  unauth   ok         denied      denied    denied     ok
  ListOrders          unauth  unauth  unauth   ok         denied      denied    denied     ok
ManagerService
  RegisterTrainer     unauth  unauth  unauth   denied     denied      denied    denied     ok
  ListTrainers        unauth  unauth  unauth   denied     denied      ok        ok         ok
  AssignTrainer       unauth  unauth  unauth   denied     denied      denied    denied     ok
  GetAssignment       unauth  unauth  unauth   denied     denied      ok        denied     ok
  ListAssignments     unauth  unauth  unauth   denied     denied      ok        denied     ok
TrainerService
  ConfirmSchedule     unauth  unauth  unauth   denied     denied      ok        denied     denied
  RegisterClassResult unauth  unauth  unauth   denied     denied      ok        denied     denied
  CancelSchedule      unauth  unauth  unauth   denied     denied      denied    denied     ok
  GetSchedule         unauth  unauth  unauth   denied     denied      ok        denied     ok
  ListSchedules       unauth  unauth  unauth   denied     denied      ok        denied     ok
StatusService
  GetOrderStatus      unauth  unauth  unauth   ok         denied      ok        denied     ok
  ListOrderStatuses   unauth  unauth  unauth   ok         denied      ok        denied     ok
  ListClassResults    unauth  unauth  unauth   ok         denied      denied    denied     ok
  ListNotifications   unauth  unauth  unauth   ok         denied      denied    denied     ok
  WatchNotifications  unauth  unauth  unauth   ok         denied      denied    denied     ok
"""

CODES = {
    "ok": grpc.StatusCode.OK,
    "unauth": grpc.StatusCode.UNAUTHENTICATED,
    "denied": grpc.StatusCode.PERMISSION_DENIED,
}


def parse(table: str) -> tuple[list[str], dict[tuple[str, str], grpc.StatusCode]]:
    """{("Service.Method", caller): code}; a line without cells names the service."""
    header, *lines = table.strip("\n").splitlines()
    callers = header.split()
    expected: dict[tuple[str, str], grpc.StatusCode] = {}
    service = ""
    for line in lines:
        name, *cells = line.split()
        if not cells:
            service = name
            continue
        for caller, cell in zip(callers, cells, strict=True):
            expected[f"{service}.{name}", caller] = CODES[cell]
    return callers, expected


CALLERS, EXPECTED = parse(MATRIX)
METHODS = list(dict.fromkeys(method for method, _ in EXPECTED))


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    """Real data for every row: alice's orders, held by trainer T in each schedule state a
    method needs. bob is another customer, U another trainer on the roster."""

    platform: Platform
    stubs: dict[str, Any]
    alice: str
    bob: str
    trainer_t: str
    trainer_u: str
    manager_id: str
    held_order: str
    """Assigned to T, schedule CONFIRMED: reads, and the class result."""
    requested_order: str
    """Assigned to T, schedule REQUESTED: the confirmation."""
    cancellable_order: str
    """Assigned to T, schedule REQUESTED: the cancellation (idempotent)."""
    open_order: str
    """Awaiting a trainer: the assignment (idempotent)."""
    slot: datetime

    def auth(self, role: str, subject: str) -> tuple[tuple[str, str]]:
        return bearer(self.platform.token(role, subject))

    @property
    def as_manager(self) -> tuple[tuple[str, str]]:
        return self.auth("manager", self.manager_id)

    def fresh_order(self) -> str:
        """An order of alice's, for a call that uses one up."""
        return (
            self.stubs["OrderService"]
            .PlaceOrder(
                order.PlaceOrderRequest(
                    customer_id=self.alice, customer_name="Alice", class_name="Yoga"
                ),
                metadata=self.as_manager,
            )
            .order_id
        )


def requests(world: World) -> dict[str, Callable[[], Any]]:
    """For each method, the request every caller sends: always about alice's data and
    trainer T's schedules, so that "self" and "other" are meaningful."""
    w = world
    return {
        "OrderService.PlaceOrder": lambda: order.PlaceOrderRequest(
            customer_id=w.alice, customer_name="Alice", class_name="Pilates"
        ),
        "OrderService.CancelOrder": lambda: order.CancelOrderRequest(
            order_id=w.fresh_order(), reason="matrix"
        ),
        "OrderService.GetOrder": lambda: order.GetOrderRequest(order_id=w.held_order),
        "OrderService.ListOrders": lambda: order.ListOrdersRequest(customer_id=w.alice),
        "ManagerService.RegisterTrainer": lambda: manager.RegisterTrainerRequest(name="New"),
        "ManagerService.ListTrainers": lambda: manager.ListTrainersRequest(),
        "ManagerService.AssignTrainer": lambda: manager.AssignTrainerRequest(
            order_id=w.open_order, trainer_id=w.trainer_t
        ),
        "ManagerService.GetAssignment": lambda: manager.GetAssignmentRequest(order_id=w.held_order),
        "ManagerService.ListAssignments": lambda: manager.ListAssignmentsRequest(
            trainer_id=w.trainer_t
        ),
        "TrainerService.ConfirmSchedule": lambda: trainer.ConfirmScheduleRequest(
            order_id=w.requested_order,
            start_time=timestamp(w.slot + timedelta(hours=2)),
            duration_minutes=60,
        ),
        "TrainerService.RegisterClassResult": lambda: trainer.RegisterClassResultRequest(
            order_id=w.held_order, result="Good session"
        ),
        "TrainerService.CancelSchedule": lambda: trainer.CancelScheduleRequest(
            order_id=w.cancellable_order, reason="matrix"
        ),
        "TrainerService.GetSchedule": lambda: trainer.GetScheduleRequest(order_id=w.held_order),
        "TrainerService.ListSchedules": lambda: trainer.ListSchedulesRequest(
            trainer_id=w.trainer_t
        ),
        "StatusService.GetOrderStatus": lambda: status.GetOrderStatusRequest(order_id=w.held_order),
        "StatusService.ListOrderStatuses": lambda: status.ListOrderStatusesRequest(
            customer_id=w.alice, trainer_id=w.trainer_t
        ),
        "StatusService.ListClassResults": lambda: status.ListClassResultsRequest(
            customer_id=w.alice
        ),
        "StatusService.ListNotifications": lambda: status.ListNotificationsRequest(
            customer_id=w.alice
        ),
        "StatusService.WatchNotifications": lambda: status.WatchNotificationsRequest(
            customer_id=w.alice
        ),
    }


def metadata_of(world: World, caller: str, untrusted_keys: Any) -> tuple[tuple[str, str], ...]:
    w = world
    match caller:
        case "none":
            return ()
        case "forged":
            return bearer(token_signed_by_another_key(untrusted_keys, "manager", w.manager_id))
        case "expired":
            return bearer(expired_token(w.platform, "manager", w.manager_id))
        case "cust.self":
            return w.auth("customer", w.alice)
        case "cust.other":
            return w.auth("customer", w.bob)
        case "trn.self":
            return w.auth("trainer", w.trainer_t)
        case "trn.other":
            return w.auth("trainer", w.trainer_u)
        case "manager":
            return w.as_manager
    raise ValueError(caller)


WATCH_DEADLINE_S = 3.0
"""A refused watch ends with its error in milliseconds; one the server accepted stays
open until this deadline. Generous, so that a slow refusal on a loaded runner is not
mistaken for an accepted watch."""


def outcome(stub: Any, method: str, request: Any, metadata: Any) -> grpc.StatusCode:
    """The status code of one call. A watch the server accepted stays open: it ends by
    the client's deadline with no error of its own."""
    rpc = getattr(stub, method)
    try:
        if method == "WatchNotifications":
            for _ in rpc(request, metadata=metadata, timeout=WATCH_DEADLINE_S):
                break
        else:
            rpc(request, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        code = error.code()
        if method == "WatchNotifications" and code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return grpc.StatusCode.OK
        return code
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def stubs(platform: Platform) -> Iterator[dict[str, Any]]:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        yield {
            "OrderService": order_grpc.OrderServiceStub(channel),
            "ManagerService": manager_grpc.ManagerServiceStub(channel),
            "TrainerService": trainer_grpc.TrainerServiceStub(channel),
            "StatusService": status_grpc.StatusServiceStub(channel),
        }


@pytest.fixture(scope="module")
def world(platform: Platform, stubs: dict[str, Any]) -> World:
    orders, managers = stubs["OrderService"], stubs["ManagerService"]
    trainers, views = stubs["TrainerService"], stubs["StatusService"]
    alice = unique("alice")
    boss = bearer(platform.token("manager", unique("mgr")))
    roster = [
        managers.RegisterTrainer(manager.RegisterTrainerRequest(name=name), metadata=boss)
        for name in ("T", "U")
    ]
    trainer_t, trainer_u = (t.trainer_id for t in roster)
    as_alice = bearer(platform.token("customer", alice))
    as_t = bearer(platform.token("trainer", trainer_t))

    def place() -> str:
        request = order.PlaceOrderRequest(customer_name="Alice", class_name="Boxing")
        return orders.PlaceOrder(request, metadata=as_alice).order_id

    held, requested, cancellable, opened = place(), place(), place(), place()
    for order_id in (held, requested, cancellable, opened):
        wait_for(
            lambda o=order_id: _exists(
                managers.GetAssignment, manager.GetAssignmentRequest(order_id=o), boss
            ),
            what=f"assignment of {order_id}",
        )
    for order_id in (held, requested, cancellable):
        managers.AssignTrainer(
            manager.AssignTrainerRequest(order_id=order_id, trainer_id=trainer_t), metadata=boss
        )
        wait_for(
            lambda o=order_id: _exists(
                trainers.GetSchedule, trainer.GetScheduleRequest(order_id=o), as_t
            ),
            what=f"schedule of {order_id}",
        )
    slot = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    trainers.ConfirmSchedule(
        trainer.ConfirmScheduleRequest(
            order_id=held, start_time=timestamp(slot), duration_minutes=60
        ),
        metadata=as_t,
    )
    wait_for(
        lambda: _exists(
            views.GetOrderStatus,
            status.GetOrderStatusRequest(order_id=held),
            boss,
            lambda v: v.trainer_id == trainer_t,
        ),
        what="status view of the held order naming trainer T",
    )
    return World(
        platform=platform,
        stubs=stubs,
        alice=alice,
        bob=unique("bob"),
        trainer_t=trainer_t,
        trainer_u=trainer_u,
        manager_id=unique("mgr"),
        held_order=held,
        requested_order=requested,
        cancellable_order=cancellable,
        open_order=opened,
        slot=slot,
    )


def _exists(rpc: Any, request: Any, metadata: Any, ready: Callable[[Any], bool] = bool) -> bool:
    try:
        return ready(rpc(request, metadata=metadata, timeout=5))
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.NOT_FOUND:
            return False
        raise


@pytest.fixture(scope="module")
def untrusted_keys(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("untrusted-jwt")


@pytest.mark.parametrize(
    ("method", "caller"),
    list(EXPECTED),
    ids=[f"{method}-{caller}" for method, caller in EXPECTED],
)
def test_authorization_matrix(world: World, untrusted_keys: Any, method: str, caller: str) -> None:
    service, name = method.split(".")
    request = requests(world)[method]()
    got = outcome(world.stubs[service], name, request, metadata_of(world, caller, untrusted_keys))
    assert got == EXPECTED[method, caller], f"{method} by {caller}"


def test_the_matrix_covers_every_public_method() -> None:
    descriptors = [
        order.DESCRIPTOR.services_by_name["OrderService"],
        manager.DESCRIPTOR.services_by_name["ManagerService"],
        trainer.DESCRIPTOR.services_by_name["TrainerService"],
        status.DESCRIPTOR.services_by_name["StatusService"],
    ]
    public = [f"{s.name}.{m.name}" for s in descriptors for m in s.methods]
    assert METHODS == public
    assert len(CALLERS) == 8


# The same rules over HTTP/JSON: 401 from Envoy, 403 from the service, 200 when allowed.
HTTP_ROWS = {
    "GET /v1/orders/{held}": [401, 401, 401, 200, 403, 403, 403, 200],
    "POST /v1/schedules/{requested}:confirm": [401, 401, 401, 403, 403, 200, 403, 403],
    "GET /v1/status/orders/{held}": [401, 401, 401, 200, 403, 200, 403, 200],
}


@pytest.mark.parametrize(
    ("route", "caller", "expected"),
    [
        (route, caller, code)
        for route, codes in HTTP_ROWS.items()
        for caller, code in zip(CALLERS, codes, strict=True)
    ],
    ids=lambda value: str(value),
)
def test_authorization_over_http(
    world: World, untrusted_keys: Any, route: str, caller: str, expected: int
) -> None:
    method, template = route.split(" ")
    path = template.format(held=world.held_order, requested=world.requested_order)
    body = None
    if method == "POST":
        slot = (world.slot + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"start_time": slot, "duration_minutes": 60}
    headers = dict(metadata_of(world, caller, untrusted_keys))
    reply = Rest(world.platform.gateway_url).call(method, path, body=body, headers=headers)
    assert reply.status == expected, reply.text
    if expected != 200:
        assert reply.json["code"] == {401: 16, 403: 7}[expected]
