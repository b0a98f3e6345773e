"""Crafted and malformed input through the real gateway, as the fuzzing of issue 12 sent
it: every answer is a 4xx whose JSON body names the field at fault (a google.rpc.Status
with ErrorInfo and BadRequest), nothing is written, and no service logs a traceback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.e2e.rest import Reply, Rest, ok
from tests.helpers import bearer
from tests.rpc_details import refusal_of

INVALID_ARGUMENT = 3
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class JsonRefusal:
    status: int
    code: int
    message: str
    reason: str
    domain: str
    fields: list[str]


def refused(reply: Reply) -> JsonRefusal:
    """The structured error of an HTTP reply: exactly one ErrorInfo, at most one BadRequest."""
    body = reply.json
    details = body["details"]
    infos = [d for d in details if d["@type"] == ERROR_INFO]
    requests = [d for d in details if d["@type"] == BAD_REQUEST]
    assert len(infos) == 1 and len(requests) <= 1 and len(details) == 1 + len(requests), body
    violations = requests[0]["field_violations"] if requests else []
    for violation in violations:
        assert violation["description"] == body["message"], body
        assert violation["reason"] == infos[0]["reason"], body
    return JsonRefusal(
        status=reply.status,
        code=body["code"],
        message=body["message"],
        reason=infos[0]["reason"],
        domain=infos[0]["domain"],
        fields=[violation["field"] for violation in violations],
    )


@pytest.fixture(scope="module")
def rest(platform: Platform) -> Rest:
    return Rest(platform.gateway_url)


@pytest.fixture(autouse=True)
def no_tracebacks(platform: Platform) -> Iterator[None]:
    """No call handled during the test logged an error or a traceback, neither the kit's
    interceptor nor grpc (which logs what a servicer or deserializer raised): a client's
    mistake is a refusal logged at INFO. Other loggers (event consumers of earlier tests)
    are not this test's business."""
    logs = [replica.log_file for replicas in platform.services.values() for replica in replicas]
    offsets = {log: log.stat().st_size if log.exists() else 0 for log in logs}
    yield
    for log, offset in offsets.items():
        with log.open("rb") as lines:
            lines.seek(offset)
            for line in lines.read().decode(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                entry = json.loads(line)
                if entry.get("logger", "").startswith(("ptkit.server", "grpc")):
                    assert entry.get("level") in ("debug", "info"), (log.name, entry)
                    assert "exc" not in entry, (log.name, entry)


# Every route with a string in its path or query: the value %ff is not UTF-8.
NOT_UTF8_ROUTES = [
    ("GET", "/v1/orders/%ff", "order_id"),
    ("POST", "/v1/orders/%ff:cancel", "order_id"),
    ("GET", "/v1/orders?customer_id=%ff", "customer_id"),
    ("GET", "/v1/orders?page_token=%ff", "page_token"),
    ("GET", "/v1/trainers?page_token=%ff", "page_token"),
    ("POST", "/v1/assignments/%ff:assign", "order_id"),
    ("GET", "/v1/assignments/%ff", "order_id"),
    ("GET", "/v1/assignments?trainer_id=%ff", "trainer_id"),
    ("POST", "/v1/schedules/%ff:confirm", "order_id"),
    ("POST", "/v1/schedules/%ff:result", "order_id"),
    ("POST", "/v1/schedules/%ff:cancel", "order_id"),
    ("GET", "/v1/schedules/%ff", "order_id"),
    ("GET", "/v1/schedules?trainer_id=%ff", "trainer_id"),
    ("GET", "/v1/status/orders/%ff", "order_id"),
    ("GET", "/v1/status/orders?customer_id=%ff", "customer_id"),
    ("GET", "/v1/status/orders?trainer_id=%ff", "trainer_id"),
    ("GET", "/v1/status/customers/%ff/results", "customer_id"),
    ("GET", "/v1/status/customers/%ff/notifications", "customer_id"),
]


@pytest.mark.parametrize(("method", "path", "field"), NOT_UTF8_ROUTES)
def test_invalid_utf8_in_a_path_or_query_value_is_a_400_naming_the_field(
    rest: Rest, platform: Platform, method: str, path: str, field: str
) -> None:
    body = {} if method == "POST" else None
    reply = rest.call(method, path, platform.token("manager", "kim"), body=body)
    error = refused(reply)
    assert (error.status, error.code, error.reason, error.domain, error.fields) == (
        400,
        INVALID_ARGUMENT,
        "INVALID_UTF8",
        "ptplatform.dev",
        [field],
    )
    assert error.message == f"{field} is not valid UTF-8: text fields take UTF-8 encoded Unicode"


def test_an_overlong_utf8_sequence_in_a_query_value_is_refused_too(
    rest: Rest, platform: Platform
) -> None:
    reply = rest.get("/v1/orders?customer_id=al%c0%afice", platform.token("customer", "alice"))
    assert (refused(reply).status, refused(reply).fields) == (400, ["customer_id"])


@pytest.mark.parametrize(
    ("field", "value", "character"),
    [
        ("customer_name", "Al\u0000ice", "U+0000"),
        ("customer_name", "Alice\u001b[31m", "U+001B"),
        ("class_name", "Yoga\nFlow", "U+000A"),
        ("class_name", "Yoga\u202e", "U+202E"),
    ],
)
def test_nul_and_control_characters_in_an_order_are_refused_naming_the_field(
    rest: Rest, platform: Platform, field: str, value: str, character: str
) -> None:
    customer = f"c-{uuid.uuid4().hex[:8]}"
    token = platform.token("customer", customer)
    body = {"customer_name": "Alice", "class_name": "Yoga", field: value}
    error = refused(rest.post("/v1/orders", token, body))
    assert (error.status, error.code, error.reason, error.fields) == (
        400,
        INVALID_ARGUMENT,
        "INVALID_CHARACTERS",
        [field],
    )
    assert character in error.message
    assert "allowed: printable Unicode" in error.message
    assert ok(rest.get("/v1/orders", token))["orders"] == []


def place(rest: Rest, token: str) -> dict[str, Any]:
    return ok(rest.post("/v1/orders", token, {"customer_name": "Alice", "class_name": "Yoga"}))


def test_a_cancellation_reason_with_a_nul_is_refused_and_the_order_stays_placed(
    rest: Rest, platform: Platform
) -> None:
    token = platform.token("customer", "alice")
    order = place(rest, token)
    path = f"/v1/orders/{order['order_id']}"
    error = refused(rest.post(f"{path}:cancel", token, {"reason": "moving\u0000away"}))
    assert (error.status, error.reason, error.fields) == (400, "INVALID_CHARACTERS", ["reason"])
    assert "line feeds (\\n) and tabs (\\t)" in error.message
    assert ok(rest.get(path, token))["status"] == "ORDER_STATUS_PLACED"


def test_a_cancellation_reason_may_have_several_lines(rest: Rest, platform: Platform) -> None:
    token = platform.token("customer", "alice")
    order = place(rest, token)
    reason = "moving away\n\tback next year"
    cancelled = ok(rest.post(f"/v1/orders/{order['order_id']}:cancel", token, {"reason": reason}))
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("ORDER_STATUS_CANCELLED", reason)


def test_a_trainer_name_with_control_characters_is_refused(rest: Rest, platform: Platform) -> None:
    error = refused(rest.post("/v1/trainers", platform.token("manager", "kim"), {"name": "K\x07m"}))
    assert (error.status, error.reason, error.fields) == (400, "INVALID_CHARACTERS", ["name"])


def test_a_class_result_with_a_nul_is_refused_naming_the_field(
    rest: Rest, platform: Platform
) -> None:
    path = f"/v1/schedules/{uuid.uuid4()}:result"
    reply = rest.post(path, platform.token("trainer", str(uuid.uuid4())), {"result": "ok\u0000"})
    error = refused(reply)
    assert (error.status, error.reason, error.fields) == (400, "INVALID_CHARACTERS", ["result"])


def test_invalid_utf8_inside_a_json_body_is_a_400_from_the_transcoder(
    rest: Rest, platform: Platform
) -> None:
    """Envoy parses the body before any service sees it: a 400 without details."""
    token = platform.token("customer", "alice")
    body = b'{"customer_name": "Al\xffice", "class_name": "Yoga"}'
    reply = rest.call("POST", "/v1/orders", token, raw_body=body)
    assert (reply.status, reply.json["code"]) == (400, INVALID_ARGUMENT)


async def test_grpc_callers_through_the_gateway_get_invalid_argument_with_a_bad_request(
    platform: Platform,
) -> None:
    metadata = bearer(platform.token("customer", "alice"))
    async with grpc.aio.insecure_channel(platform.gateway_address) as channel:
        raw = channel.unary_unary("/ptplatform.order.v1.OrderService/GetOrder")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(b"\x0a\x03\xffab", metadata=metadata)
        not_utf8 = refusal_of(caught.value)
        assert (not_utf8.code, not_utf8.info.reason, not_utf8.fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_UTF8",
            ["order_id"],
        )
        stub = pb_grpc.OrderServiceStub(channel)
        request = pb.PlaceOrderRequest(customer_name="Al\x00ice", class_name="Yoga")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PlaceOrder(request, metadata=metadata)
        nul = refusal_of(caught.value)
        assert (nul.code, nul.info.reason, nul.fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_CHARACTERS",
            ["customer_name"],
        )


def test_a_domain_refusal_reaches_http_callers_with_its_reason_and_metadata(
    rest: Rest, platform: Platform
) -> None:
    missing = str(uuid.uuid4())
    reply = rest.get(f"/v1/orders/{missing}", platform.token("customer", "alice"))
    body = reply.json
    assert reply.status == 404
    assert body["details"] == [
        {
            "@type": ERROR_INFO,
            "reason": "ORDER_NOT_FOUND",
            "domain": "ptplatform.dev",
            "metadata": {"order_id": missing},
        }
    ]
