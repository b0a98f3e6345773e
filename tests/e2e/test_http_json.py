"""Every service through the real Envoy with plain HTTP/JSON, as curl calls it: REST paths
from the ``google.api.http`` annotations, JSON bodies, and errors as HTTP codes with a JSON
``{"code": <gRPC code>, "message": ...}`` body, whether a service or Envoy made them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ptctl.launcher import Platform
from tests.e2e.rest import Reply, Rest, expired_token, ok, token_signed_by_another_key
from tests.helpers import wait_for

INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, UNAUTHENTICATED = (
    3,
    5,
    7,
    9,
    16,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tomorrow_at(hour: int) -> datetime:
    day = datetime.now(UTC) + timedelta(days=1)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def rest(platform: Platform) -> Rest:
    return Rest(platform.gateway_url)


@dataclass
class Studio:
    """The people of one test and the HTTP steps of the booking flow they take."""

    rest: Rest
    platform: Platform
    customer_id: str
    manager: str

    @property
    def customer(self) -> str:
        return self.platform.token("customer", self.customer_id)

    def trainer_token(self, trainer_id: str) -> str:
        return self.platform.token("trainer", trainer_id)

    def place_order(self, class_name: str = "Pilates 1:1", **fields: Any) -> dict[str, Any]:
        body = {"customer_name": "Alice", "class_name": class_name, **fields}
        return ok(self.rest.post("/v1/orders", self.customer, body))

    def register_trainer(self, name: str = "Kim") -> dict[str, Any]:
        return ok(self.rest.post("/v1/trainers", self.manager, {"name": name}))

    def assignment_when_opened(self, order_id: str) -> dict[str, Any]:
        """The assignment manager_svc opens once it consumed OrderPlaced."""
        reply = wait_for(
            lambda: _found(self.rest.get(f"/v1/assignments/{order_id}", self.manager)),
            what=f"assignment of {order_id}",
        )
        return reply.json

    def assign(self, order_id: str, trainer_id: str) -> dict[str, Any]:
        self.assignment_when_opened(order_id)
        path = f"/v1/assignments/{order_id}:assign"
        return ok(self.rest.post(path, self.manager, {"trainer_id": trainer_id}))

    def schedule_when_requested(self, order_id: str, trainer_id: str) -> dict[str, Any]:
        """The schedule trainer_svc opens once it consumed TrainerAssigned."""
        token = self.trainer_token(trainer_id)
        reply = wait_for(
            lambda: _found(self.rest.get(f"/v1/schedules/{order_id}", token)),
            what=f"schedule of {order_id}",
        )
        return reply.json

    def order_when(self, order_id: str, status: str) -> dict[str, Any]:
        def current() -> dict[str, Any] | None:
            order = ok(self.rest.get(f"/v1/orders/{order_id}", self.customer))
            return order if order["status"] == status else None

        return wait_for(current, what=f"order {order_id} {status}")

    def confirm(self, order_id: str, trainer_id: str, start: datetime) -> Reply:
        body = {"start_time": rfc3339(start), "duration_minutes": 60}
        return self.rest.post(
            f"/v1/schedules/{order_id}:confirm", self.trainer_token(trainer_id), body
        )

    def record_result(self, order_id: str, trainer_id: str, result: str) -> Reply:
        return self.rest.post(
            f"/v1/schedules/{order_id}:result", self.trainer_token(trainer_id), {"result": result}
        )

    def booked_order(self, trainer_id: str, class_name: str = "Pilates 1:1") -> str:
        """An order assigned to the trainer, its schedule REQUESTED."""
        order_id = self.place_order(class_name)["order_id"]
        self.assign(order_id, trainer_id)
        self.schedule_when_requested(order_id, trainer_id)
        return order_id


def _found(reply: Reply) -> Reply | None:
    """The reply once it is 200; None while it is 404 (the event is still on its way)."""
    if reply.status == 404:
        return None
    assert reply.status == 200, (reply.status, reply.text)
    return reply


@pytest.fixture
def studio(platform: Platform, rest: Rest) -> Studio:
    return Studio(rest, platform, unique("cust"), platform.token("manager", unique("mgr")))


def test_order_service_places_reads_lists_and_cancels_over_http(studio: Studio) -> None:
    rest, customer = studio.rest, studio.customer
    start = tomorrow_at(9)
    request_id = str(uuid.uuid4())
    placed = studio.place_order(preferred_start=rfc3339(start), request_id=request_id)
    assert placed["customer_id"] == studio.customer_id
    assert placed["status"] == "ORDER_STATUS_PLACED"
    assert placed["preferred_start"] == rfc3339(start)
    assert placed["version"] == "1", "int64 fields are JSON strings"
    assert studio.place_order(request_id=request_id)["order_id"] == placed["order_id"]

    assert ok(rest.get(f"/v1/orders/{placed['order_id']}", customer)) == placed
    second = studio.place_order("Boxing")
    first_page = ok(rest.get("/v1/orders?page_size=1", customer))
    assert [o["order_id"] for o in first_page["orders"]] == [second["order_id"]]
    next_page = ok(rest.get(f"/v1/orders?page_token={first_page['next_page_token']}", customer))
    assert [o["order_id"] for o in next_page["orders"]] == [placed["order_id"]]

    cancel = f"/v1/orders/{placed['order_id']}:cancel"
    cancelled = ok(rest.post(cancel, customer, {"reason": "ill"}))
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("ORDER_STATUS_CANCELLED", "ill")
    status, code, message = rest.post(cancel, customer, {"reason": "again"}).error()
    assert (status, code) == (400, FAILED_PRECONDITION)
    assert "already cancelled" in message


def test_manager_service_keeps_the_roster_and_assigns_over_http(studio: Studio) -> None:
    rest, manager = studio.rest, studio.manager
    trainer = studio.register_trainer("Kim")
    assert trainer["active"] is True
    roster = ok(rest.get("/v1/trainers", manager))["trainers"]
    assert trainer in roster

    order_id = studio.place_order()["order_id"]
    opened = studio.assignment_when_opened(order_id)
    assert (opened["status"], opened["customer_id"]) == (
        "ASSIGNMENT_STATUS_AWAITING_TRAINER",
        studio.customer_id,
    )
    assigned = studio.assign(order_id, trainer["trainer_id"])
    assert (assigned["status"], assigned["trainer_name"]) == (
        "ASSIGNMENT_STATUS_TRAINER_ASSIGNED",
        "Kim",
    )
    query = f"trainer_id={trainer['trainer_id']}&status=ASSIGNMENT_STATUS_TRAINER_ASSIGNED"
    listed = ok(rest.get(f"/v1/assignments?{query}", manager))["assignments"]
    assert [a["order_id"] for a in listed] == [order_id]

    ok(rest.post(f"/v1/orders/{order_id}:cancel", studio.customer, {"reason": "moved away"}))
    wait_for(
        lambda: (
            ok(rest.get(f"/v1/assignments/{order_id}", manager))["status"]
            == "ASSIGNMENT_STATUS_CANCELLED"
        ),
        what="assignment cancelled after OrderCancelled",
    )
    body = {"trainer_id": trainer["trainer_id"]}
    reply = rest.post(f"/v1/assignments/{order_id}:assign", manager, body)
    assert reply.error()[:2] == (400, FAILED_PRECONDITION)


def test_trainer_service_confirms_records_and_cancels_schedules_over_http(
    studio: Studio,
) -> None:
    rest = studio.rest
    trainer_id = studio.register_trainer("Lee")["trainer_id"]
    coach = studio.trainer_token(trainer_id)
    order_id = studio.booked_order(trainer_id)
    assert ok(rest.get("/v1/schedules", coach))["schedules"][0]["status"] == (
        "SCHEDULE_STATUS_REQUESTED"
    )

    start = tomorrow_at(10)
    confirmed = ok(studio.confirm(order_id, trainer_id, start))
    assert (confirmed["status"], confirmed["start_time"], confirmed["duration_minutes"]) == (
        "SCHEDULE_STATUS_CONFIRMED",
        rfc3339(start),
        60,
    )
    listed = ok(rest.get("/v1/schedules?status=SCHEDULE_STATUS_CONFIRMED", coach))["schedules"]
    assert [s["order_id"] for s in listed] == [order_id]
    studio.order_when(order_id, "ORDER_STATUS_CONFIRMED")

    clashing = studio.booked_order(trainer_id, "Boxing")
    status, code, message = studio.confirm(clashing, trainer_id, start).error()
    assert (status, code) == (400, FAILED_PRECONDITION), message
    refused = rest.post(f"/v1/schedules/{clashing}:cancel", coach, {"reason": "sick"})
    assert refused.error()[:2] == (403, PERMISSION_DENIED)
    cancelled = ok(
        rest.post(f"/v1/schedules/{clashing}:cancel", studio.manager, {"reason": "sick"})
    )
    assert (cancelled["status"], cancelled["cancel_reason"]) == (
        "SCHEDULE_STATUS_CANCELLED",
        "sick",
    )

    held = ok(studio.record_result(order_id, trainer_id, "Deadlift 80 kg, good form"))
    assert (held["status"], held["class_result"]) == (
        "SCHEDULE_STATUS_CLASS_COMPLETED",
        "Deadlift 80 kg, good form",
    )
    studio.order_when(order_id, "ORDER_STATUS_COMPLETED")
    late = rest.post(f"/v1/orders/{order_id}:cancel", studio.customer, {"reason": "too late"})
    assert late.error()[:2] == (400, FAILED_PRECONDITION)


def test_status_service_shows_views_results_and_notifications_over_http(
    studio: Studio,
) -> None:
    rest, customer, manager = studio.rest, studio.customer, studio.manager
    trainer_id = studio.register_trainer("Park")["trainer_id"]
    order_id = studio.booked_order(trainer_id, "Strength 101")
    ok(studio.confirm(order_id, trainer_id, tomorrow_at(11)))
    ok(studio.record_result(order_id, trainer_id, "Ran 5 km"))

    def completed_view() -> dict[str, Any] | None:
        view = ok(rest.get(f"/v1/status/orders/{order_id}", customer))
        return view if view["order_status"] == "ORDER_STATUS_COMPLETED" else None

    view = wait_for(completed_view, what="status view of a completed order")
    assert view["schedule_status"] == "SCHEDULE_STATUS_CLASS_COMPLETED"
    assert (view["trainer_name"], view["class_result"]) == ("Park", "Ran 5 km")

    mine = ok(rest.get("/v1/status/orders?order_status=ORDER_STATUS_COMPLETED", customer))
    assert [v["order_id"] for v in mine["statuses"]] == [order_id]
    held = ok(rest.get(f"/v1/status/orders?trainer_id={trainer_id}", manager))["statuses"]
    assert [v["order_id"] for v in held] == [order_id]

    customer_path = f"/v1/status/customers/{studio.customer_id}"
    results = ok(rest.get(f"{customer_path}/results", customer))["results"]
    assert [(r["order_id"], r["result"]) for r in results] == [(order_id, "Ran 5 km")]
    notifications = wait_for(
        lambda: ok(rest.get(f"{customer_path}/notifications", customer))["notifications"],
        what="notification of the class result",
    )
    assert [n["order_id"] for n in notifications] == [order_id]

    stranger = studio.platform.token("customer", unique("cust"))
    assert rest.get(f"/v1/status/orders/{order_id}", stranger).error()[:2] == (
        403,
        PERMISSION_DENIED,
    )


@dataclass(frozen=True)
class BadCall:
    """A request that must fail: who sends it, and the JSON error it must get."""

    name: str
    method: str
    path: str
    caller: str
    status: int
    code: int
    message: str
    body: Any = None
    raw_body: bytes | None = None


SOME_ID = "6f1c0a7e-3f4b-4c1d-9a53-2b8e1f0d7c11"
BAD_CALLS = [
    BadCall("no token", "GET", "/v1/orders", "nobody", 401, UNAUTHENTICATED, "Jwt is missing"),
    BadCall(
        "no token, JSON body",
        "POST",
        "/v1/orders",
        "nobody",
        401,
        UNAUTHENTICATED,
        "Jwt is missing",
        body={"customer_name": "A", "class_name": "Yoga"},
    ),
    BadCall("not a JWT", "GET", "/v1/orders", "garbage", 401, UNAUTHENTICATED, "Jwt"),
    BadCall("expired token", "GET", "/v1/orders", "expired", 401, UNAUTHENTICATED, "expired"),
    BadCall(
        "signed by another key",
        "GET",
        "/v1/orders",
        "another key",
        401,
        UNAUTHENTICATED,
        "Jwks doesn't have key to match kid",
    ),
    BadCall("wrong role", "GET", "/v1/trainers", "customer", 403, PERMISSION_DENIED, "may not"),
    BadCall(
        "someone else's orders",
        "GET",
        "/v1/orders?customer_id=somebody-else",
        "customer",
        403,
        PERMISSION_DENIED,
        "may not act for customer 'somebody-else'",
    ),
    BadCall(
        "manager confirms a schedule",
        "POST",
        f"/v1/schedules/{SOME_ID}:confirm",
        "manager",
        403,
        PERMISSION_DENIED,
        "needs trainer",
        body={},
    ),
    BadCall(
        "malformed id",
        "GET",
        "/v1/orders/not-an-id",
        "customer",
        400,
        INVALID_ARGUMENT,
        "not a valid id",
    ),
    BadCall(
        "missing field",
        "POST",
        "/v1/orders",
        "customer",
        400,
        INVALID_ARGUMENT,
        "customer_name",
        body={"class_name": "Yoga"},
    ),
    BadCall(
        "body is not JSON",
        "POST",
        "/v1/orders",
        "customer",
        400,
        INVALID_ARGUMENT,
        "",
        raw_body=b"{not json",
    ),
    BadCall(
        "unknown query parameter",
        "GET",
        "/v1/orders?colour=red",
        "customer",
        400,
        INVALID_ARGUMENT,
        "colour",
    ),
    BadCall(
        "wrong type in query",
        "GET",
        "/v1/orders?page_size=many",
        "customer",
        400,
        INVALID_ARGUMENT,
        "page_size",
    ),
    BadCall("no such route", "GET", "/v1/nowhere", "customer", 404, NOT_FOUND, "no route"),
    BadCall(
        "no such order", "GET", f"/v1/orders/{SOME_ID}", "customer", 404, NOT_FOUND, "not found"
    ),
    BadCall(
        "no such assignment",
        "POST",
        f"/v1/assignments/{SOME_ID}:assign",
        "manager",
        404,
        NOT_FOUND,
        "no assignment for order",
        body={"trainer_id": SOME_ID},
    ),
    BadCall(
        "no such schedule",
        "GET",
        f"/v1/schedules/{SOME_ID}",
        "trainer",
        404,
        NOT_FOUND,
        "no schedule for order",
    ),
    BadCall(
        "no such status view",
        "GET",
        f"/v1/status/orders/{SOME_ID}",
        "customer",
        404,
        NOT_FOUND,
        "no status for order",
    ),
]


@pytest.fixture(scope="module")
def callers(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    other_keys: Path = tmp_path_factory.mktemp("untrusted-jwt")
    return {
        "nobody": None,
        "garbage": "not-a-jwt",
        "expired": expired_token(platform, "customer", "alice"),
        "another key": token_signed_by_another_key(other_keys, "manager", "mallory"),
        "customer": platform.token("customer", unique("cust")),
        "manager": platform.token("manager", unique("mgr")),
        "trainer": platform.token("trainer", str(uuid.uuid4())),
    }


@pytest.mark.parametrize("bad", BAD_CALLS, ids=[bad.name for bad in BAD_CALLS])
def test_errors_come_back_as_http_codes_with_a_json_body(
    rest: Rest, callers: dict[str, str | None], bad: BadCall
) -> None:
    reply = rest.call(
        bad.method, bad.path, callers[bad.caller], body=bad.body, raw_body=bad.raw_body
    )
    status, code, message = reply.error()
    assert (status, code) == (bad.status, bad.code), message
    assert bad.message in message


def test_registering_a_trainer_again_with_its_request_id_returns_the_same_trainer(
    studio: Studio,
) -> None:
    request_id = str(uuid.uuid4())
    body = {"name": "Kim Retry", "request_id": request_id}
    first = ok(studio.rest.post("/v1/trainers", studio.manager, body))
    again = ok(studio.rest.post("/v1/trainers", studio.manager, body))
    assert again == first
    registered, token = [], None
    while token != "":
        query = f"?page_size=100&page_token={token}" if token else "?page_size=100"
        page = ok(studio.rest.get(f"/v1/trainers{query}", studio.manager))
        registered += [t["trainer_id"] for t in page["trainers"] if t["name"] == "Kim Retry"]
        token = page.get("next_page_token", "")
    assert registered == [first["trainer_id"]]


def test_a_request_id_that_is_not_a_uuid_is_refused_naming_the_field(studio: Studio) -> None:
    for path, token, body in (
        ("/v1/trainers", studio.manager, {"name": "Kim", "request_id": "retry-1"}),
        (
            "/v1/orders",
            studio.customer,
            {"customer_name": "Alice", "class_name": "Yoga", "request_id": "retry-1"},
        ),
    ):
        reply = studio.rest.post(path, token, body)
        assert reply.status == 400, reply.text
        violations = [
            violation["field"]
            for detail in reply.json["details"]
            for violation in detail.get("field_violations", [])
        ]
        assert violations == ["request_id"], reply.text
