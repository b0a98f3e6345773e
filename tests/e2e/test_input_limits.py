"""Strict input and size limits at the gateway, through the real Envoy: non-standard JSON,
unknown, duplicate and URL-bound fields and wrong JSON types are 400; a body over the
limit is 413 before it is read; a long URL or large headers get one consistent 4xx (never
429, never gRPC code 2); an unknown method on a known path is 405 with Allow. Every
refusal has the gRPC-status JSON shape and writes nothing."""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import grpc
import pytest

from ptctl.gateway_errors import DOMAIN
from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.e2e.rest import Reply, Rest, ok

INVALID_ARGUMENT, UNIMPLEMENTED, NOT_FOUND, UNAUTHENTICATED = 3, 12, 5, 16
SOME_ID = "6f1c0a7e-3f4b-4c1d-9a53-2b8e1f0d7c11"


@pytest.fixture(scope="module")
def rest(platform: Platform) -> Rest:
    return Rest(platform.gateway_url)


@pytest.fixture
def customer(platform: Platform) -> str:
    return platform.token("customer", f"cust-{uuid.uuid4().hex[:8]}")


def refusal(reply: Reply, status: int, reason: str, code: int = INVALID_ARGUMENT) -> Any:
    """The JSON error of a refused call, checked for its shape; the ErrorInfo's metadata."""
    body = reply.json
    assert (reply.status, body["code"], body["details"][0]["reason"]) == (status, code, reason), (
        reply.text
    )
    info = body["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["domain"] == DOMAIN
    return info["metadata"]


def field_violation(reply: Reply) -> str:
    """The field the BadRequest detail names."""
    bad_request = reply.json["details"][1]
    assert bad_request["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    (violation,) = bad_request["field_violations"]
    assert violation["description"]
    return violation["field"]


BAD_BODIES = [
    ("single quotes", b"{'customer_name': 'Alice', 'class_name': 'Yoga'}", "MALFORMED_JSON", None),
    (
        "trailing comma",
        b'{"customer_name": "Alice", "class_name": "Yoga",}',
        "MALFORMED_JSON",
        None,
    ),
    (
        "comment",
        b'{"customer_name": "Alice", /* hi */ "class_name": "Yoga"}',
        "MALFORMED_JSON",
        None,
    ),
    ("bare word", b'{"customer_name": Alice, "class_name": "Yoga"}', "MALFORMED_JSON", None),
    ("two values", b'{"customer_name": "A", "class_name": "Yoga"} {}', "MALFORMED_JSON", None),
    (
        "nested too deep",
        b'{"customer_name": ' + b"[" * 200 + b"]" * 200 + b"}",
        "MALFORMED_JSON",
        None,
    ),
    (
        "invalid UTF-8",
        b'{"customer_name": "Al\xffce", "class_name": "Yoga"}',
        "MALFORMED_JSON",
        None,
    ),
    (
        "unknown field",
        b'{"customer_name": "Alice", "class_name": "Yoga", "colour": "red"}',
        "UNKNOWN_FIELD",
        "colour",
    ),
    (
        "duplicate field",
        b'{"customer_name": "Alice", "class_name": "Yoga", "customer_name": "Bob"}',
        "DUPLICATE_FIELD",
        "customer_name",
    ),
    (
        "duplicate field by its JSON name",
        b'{"customer_name": "Alice", "class_name": "Yoga", "customerName": "Bob"}',
        "DUPLICATE_FIELD",
        "customer_name",
    ),
    (
        "wrong type",
        b'{"customer_name": 42, "class_name": "Yoga"}',
        "WRONG_JSON_TYPE",
        "customer_name",
    ),
    ("not an object", b'["Alice", "Yoga"]', "WRONG_JSON_TYPE", None),
]


@pytest.mark.parametrize(
    ("raw", "reason", "field"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_a_non_standard_or_unknown_body_is_refused_and_writes_nothing(
    rest: Rest, customer: str, raw: bytes, reason: str, field: str | None
) -> None:
    reply = rest.call("POST", "/v1/orders", customer, raw_body=raw)
    metadata = refusal(reply, 400, reason)
    if field is not None:
        assert field_violation(reply) == field
        assert metadata["field"] == field
        assert field in reply.json["message"]
    else:
        assert reply.json["message"]
    assert ok(rest.get("/v1/orders", customer))["orders"] == []


def test_a_standard_body_passes_with_either_field_name(rest: Rest, customer: str) -> None:
    body = b'{"customerName": "Al\\u0069ce", "class_name": "Yoga", "preferred_start": null}'
    placed = ok(rest.call("POST", "/v1/orders", customer, raw_body=body))
    assert placed["customer_name"] == "Alice"


def test_a_field_the_url_sets_may_not_be_in_the_body(rest: Rest, customer: str) -> None:
    order_id = ok(rest.post("/v1/orders", customer, {"customer_name": "A", "class_name": "Yoga"}))[
        "order_id"
    ]
    reply = rest.post(f"/v1/orders/{order_id}:cancel", customer, {"order_id": SOME_ID})
    refusal(reply, 400, "PATH_FIELD_IN_BODY")
    assert field_violation(reply) == "order_id"
    assert ok(rest.get(f"/v1/orders/{order_id}", customer))["status"] == "ORDER_STATUS_PLACED"


def test_a_wrong_type_in_a_nested_method_names_the_field(platform: Platform, rest: Rest) -> None:
    trainer = platform.token("trainer", SOME_ID)
    reply = rest.post(f"/v1/schedules/{SOME_ID}:confirm", trainer, {"duration_minutes": "sixty"})
    refusal(reply, 400, "WRONG_JSON_TYPE")
    assert field_violation(reply) == "duration_minutes"


def test_unknown_and_repeated_query_parameters_are_refused(rest: Rest, customer: str) -> None:
    unknown = rest.get("/v1/orders?colour=red", customer)
    assert refusal(unknown, 400, "UNKNOWN_FIELD") == {"field": "colour", "location": "query"}
    twice = rest.get("/v1/orders?page_size=1&page_size=2", customer)
    refusal(twice, 400, "DUPLICATE_FIELD")
    assert field_violation(twice) == "page_size"
    assert ok(rest.get("/v1/orders?pageSize=5", customer))["orders"] == []


def raw_exchange(
    platform: Platform, head: bytes, first_chunk: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Send a request head and the start of its body, then read the reply: the gateway must
    answer without the rest of the body."""
    with socket.create_connection(("127.0.0.1", platform.config.gateway.gateway_port), 10) as sock:
        sock.sendall(head + first_chunk)
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
        header_block, body = received.split(b"\r\n\r\n", 1)
        lines = header_block.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            data = sock.recv(65536)
            assert data
            body += data
        return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_a_64_mb_body_is_refused_with_413_before_it_is_sent(
    platform: Platform, customer: str
) -> None:
    size = 64 * 1024 * 1024
    head = (
        f"POST /v1/orders HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {customer}\r\n"
        f"content-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    ).encode()
    status, headers, body = raw_exchange(platform, head, b'{"customer_name": "' + b"a" * 4096)
    assert status == 413
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert (error["code"], error["details"][0]["reason"]) == (INVALID_ARGUMENT, "BODY_TOO_LARGE")
    assert error["details"][0]["metadata"]["limit"] == str(
        platform.config.gateway.limits.max_request_body_bytes
    )


def test_a_body_over_the_limit_is_413_with_or_without_a_length(
    platform: Platform, rest: Rest, customer: str
) -> None:
    limit = platform.config.gateway.limits.max_request_body_bytes
    big = {"customer_name": "A", "class_name": "x" * limit}
    refusal(rest.post("/v1/orders", customer, big), 413, "BODY_TOO_LARGE")
    chunk = json.dumps(big).encode()
    head = (
        f"POST /v1/orders HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {customer}\r\n"
        "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    ).encode()
    chunked = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    status, _, body = raw_exchange(platform, head, chunked)
    assert (status, json.loads(body)["details"][0]["reason"]) == (413, "BODY_TOO_LARGE")
    assert ok(rest.get("/v1/orders", customer))["orders"] == []


URL_SIZES = [4_000, 7_000, 8_500, 10_000, 12_000, 14_000, 16_000, 20_000]


def test_a_long_url_gets_one_answer_at_every_size_and_never_429(
    platform: Platform, rest: Rest, customer: str
) -> None:
    limit = platform.config.gateway.limits.max_url_bytes
    for size in URL_SIZES:
        path = "/v1/orders/" + "a" * (size - len("/v1/orders/"))
        answers = set()
        for _ in range(4):
            reply = rest.get(path, customer)
            body = reply.json
            answers.add((reply.status, body["code"]))
        assert len(answers) == 1, (size, answers)
        ((status, code),) = answers
        assert status != 429 and code == INVALID_ARGUMENT, (size, answers)
        if size > limit:
            # the URL limit, or with the token's header over the header limit as well
            reason = {414: "URI_TOO_LONG", 431: "HEADERS_TOO_LARGE"}[status]
            refusal(reply, status, reason)
        else:
            assert status == 400, (size, reply.text)


def test_large_headers_reach_the_service_up_to_the_limit_and_get_431_beyond(
    platform: Platform, rest: Rest, customer: str
) -> None:
    """Envoy forwards up to its header limit; the services accept that much metadata (grpc's
    defaults refuse at random from 8 KiB). Beyond it Envoy's codec refuses, with JSON."""
    limit = platform.config.gateway.limits.max_request_headers_kb * 1024
    for _ in range(5):
        filled = rest.get("/v1/orders", customer, headers={"x-filler": "f" * (limit - 3000)})
        assert filled.status == 200, filled.text
    for size in (limit + 1024, 4 * limit):
        refused = rest.get("/v1/orders", customer, headers={"x-filler": "f" * size})
        assert refusal(refused, 431, "HEADERS_TOO_LARGE") == {"limit": str(limit)}


def test_an_unknown_method_on_a_known_path_is_405_with_allow(rest: Rest, customer: str) -> None:
    deleted = rest.call("DELETE", f"/v1/orders/{SOME_ID}", customer)
    refusal(deleted, 405, "METHOD_NOT_ALLOWED", UNIMPLEMENTED)
    assert deleted.headers["allow"] == "GET"
    put = rest.call("PUT", "/v1/orders", customer, body={})
    refusal(put, 405, "METHOD_NOT_ALLOWED", UNIMPLEMENTED)
    assert put.headers["allow"] == "GET, POST"
    get_cancel = rest.get(f"/v1/orders/{SOME_ID}:cancel", customer)
    assert get_cancel.status in (400, 404, 405), get_cancel.text


def test_envoys_own_refusals_carry_a_reason(rest: Rest, customer: str) -> None:
    refusal(rest.get("/v1/orders"), 401, "UNAUTHENTICATED", UNAUTHENTICATED)
    refusal(rest.get("/v1/nowhere", customer), 404, "NO_ROUTE", NOT_FOUND)


def test_a_grpc_caller_with_large_metadata_is_served_every_time(
    platform: Platform, customer: str
) -> None:
    """12 KiB of metadata: between grpc's default soft (8 KiB) and hard (16 KiB) limits, where
    calls used to be refused at random. The strict-input filter leaves gRPC callers alone."""
    metadata = (("authorization", f"Bearer {customer}"), ("x-filler", "f" * 12 * 1024))
    with grpc.insecure_channel(platform.gateway_address) as channel:
        orders = pb_grpc.OrderServiceStub(channel)
        for _ in range(10):
            assert list(orders.ListOrders(pb.ListOrdersRequest(), metadata=metadata).orders) == []


@pytest.mark.parametrize("name", ["x-it's", "st*y", "x~y", "a|b"])
def test_a_header_name_grpc_cannot_take_is_400_and_writes_nothing(
    rest: Rest, customer: str, name: str
) -> None:
    """HTTP allows such names, gRPC metadata does not: forwarded, the service's gRPC core
    would refuse the call and the caller get a 500."""
    listed = rest.get("/v1/orders", customer, headers={name: "1"})
    assert refusal(listed, 400, "INVALID_HEADER_NAME") == {"header": name}
    placed = rest.post(
        "/v1/orders",
        customer,
        body={"customer_name": "Alice", "class_name": "Yoga"},
        headers={name: "1"},
    )
    refusal(placed, 400, "INVALID_HEADER_NAME")
    assert ok(rest.get("/v1/orders", customer)).get("orders", []) == []
