"""The OpenAPI document ``make openapi`` generates from the descriptor set: a valid
OpenAPI 3.1 document naming every REST binding, with schemas as the transcoder speaks JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from ptctl import openapi
from ptctl.envoy import PUBLIC_SERVICES
from ptctl.http_rules import PublicApi
from ptctl.launcher import DESCRIPTOR

Json = dict[str, Any]


@pytest.fixture(scope="module")
def api() -> PublicApi:
    assert DESCRIPTOR.exists(), "run `make proto` to build the descriptor set"
    return PublicApi.load(DESCRIPTOR, tuple(PUBLIC_SERVICES.values()))


@pytest.fixture(scope="module")
def document() -> Json:
    return openapi.build(DESCRIPTOR)


def operations(document: Json) -> dict[str, tuple[str, str, Json]]:
    """operationId -> (verb, path, operation)."""
    return {
        operation["operationId"]: (verb.upper(), path, operation)
        for path, item in document["paths"].items()
        for verb, operation in item.items()
    }


def schema(document: Json, name: str) -> Json:
    return document["components"]["schemas"][name]


def body_schema(document: Json, rpc: str) -> Json:
    _, _, operation = operations(document)[rpc]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def test_the_document_is_valid_openapi_3_1(document: Json) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_rpc_with_an_http_rule_is_an_operation_at_its_path(
    document: Json, api: PublicApi
) -> None:
    assert len(api.rules) == 18
    ops = operations(document)
    assert {rule.rpc for rule in api.rules} == set(ops)
    for rule in api.rules:
        verb, path, operation = ops[rule.rpc]
        assert (verb, path) == (rule.verb, rule.path)
        assert operation["tags"] == [rule.service.rsplit(".", 1)[-1]]


def test_the_document_covers_exactly_the_services_the_gateway_transcodes() -> None:
    assert set(openapi.public_services(DESCRIPTOR)) == set(PUBLIC_SERVICES.values())


def test_the_same_descriptor_set_gives_the_same_bytes() -> None:
    assert openapi.dumps(openapi.build(DESCRIPTOR)) == openapi.dumps(openapi.build(DESCRIPTOR))


def test_the_written_document_is_the_generated_one(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    openapi.main([str(DESCRIPTOR), str(out)])
    assert out.read_text() == openapi.dumps(openapi.build(DESCRIPTOR))


def test_path_fields_are_path_parameters_and_left_out_of_the_body(document: Json) -> None:
    _, _, cancel = operations(document)["CancelOrder"]
    assert cancel["parameters"] == [
        {"name": "order_id", "in": "path", "schema": {"type": "string"}, "required": True}
    ]
    assert set(body_schema(document, "CancelOrder")["properties"]) == {"reason"}


def test_a_get_takes_the_other_fields_as_query_parameters(document: Json) -> None:
    _, _, list_orders = operations(document)["ListOrders"]
    query = {p["name"]: p for p in list_orders["parameters"] if p["in"] == "query"}
    assert set(query) == {"customer_id", "page_size", "page_token"}
    assert query["page_size"]["schema"]["type"] == "integer"
    assert "default (20)" in query["page_size"]["description"]
    assert "requestBody" not in list_orders
    _, _, results = operations(document)["ListClassResults"]
    assert [p["name"] for p in results["parameters"] if p["in"] == "path"] == ["customer_id"]


def test_field_behavior_gives_required_and_read_only(document: Json) -> None:
    place = body_schema(document, "PlaceOrder")
    assert place["required"] == ["customer_name", "class_name", "preferred_start"]
    order = schema(document, "ptplatform.order.v1.Order")
    assert order["properties"]["order_id"]["readOnly"] is True
    assert order["properties"]["status"]["readOnly"] is True
    assert "readOnly" not in order["properties"]["class_name"]


def test_uuid_fields_have_the_uuid_format(document: Json) -> None:
    assert body_schema(document, "PlaceOrder")["properties"]["request_id"]["format"] == "uuid"


def test_proto3_json_mapping_of_int64_enums_timestamps_lists_and_messages(
    document: Json,
) -> None:
    order = schema(document, "ptplatform.order.v1.Order")["properties"]
    assert order["version"]["type"] == "string" and order["version"]["format"] == "int64"
    assert order["create_time"]["format"] == "date-time"
    assert order["status"]["$ref"] == "#/components/schemas/ptplatform.order.v1.OrderStatus"
    status = schema(document, "ptplatform.order.v1.OrderStatus")
    assert status == {
        "type": "string",
        "enum": [
            "ORDER_STATUS_UNSPECIFIED",
            "ORDER_STATUS_PLACED",
            "ORDER_STATUS_CONFIRMED",
            "ORDER_STATUS_COMPLETED",
            "ORDER_STATUS_CANCELLED",
        ],
    }
    orders = schema(document, "ptplatform.order.v1.ListOrdersResponse")["properties"]["orders"]
    assert orders["type"] == "array"
    assert orders["items"] == {"$ref": "#/components/schemas/ptplatform.order.v1.Order"}


def test_comments_of_the_protos_are_descriptions(document: Json) -> None:
    _, _, place = operations(document)["PlaceOrder"]
    assert "same request_id returns the same order" in place["description"]
    order = schema(document, "ptplatform.order.v1.Order")
    assert "orders/{order_id}" in order["description"]
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert "ptplatform.order.v1.OrderService" in tags["OrderService"]


def test_every_call_needs_a_bearer_jwt(document: Json) -> None:
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_errors_are_google_rpc_status_with_error_info_and_bad_request(document: Json) -> None:
    for _, _, operation in operations(document).values():
        codes = set(operation["responses"])
        assert {"200", "400", "401", "403", "404", "413", "429"} <= codes
        assert not any(code.startswith("5") and code not in ("503", "504") for code in codes)
    responses = document["components"]["responses"]
    assert "rate limit" in responses["429"]["description"]
    error = responses["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/google.rpc.Status"}
    status = schema(document, "google.rpc.Status")
    assert status["required"] == ["code", "message"]
    details = status["properties"]["details"]["items"]["anyOf"]
    types = [d["properties"]["@type"].get("const") for d in details]
    assert types == [
        "type.googleapis.com/google.rpc.ErrorInfo",
        "type.googleapis.com/google.rpc.BadRequest",
        None,
    ]
    violation = schema(document, "google.rpc.BadRequest.FieldViolation")["properties"]
    assert {"field", "description"} <= set(violation)
    assert {"reason", "domain", "metadata"} <= set(
        schema(document, "google.rpc.ErrorInfo")["properties"]
    )


def test_a_response_always_carries_the_fields_the_transcoder_always_prints(
    document: Json,
) -> None:
    order = schema(document, "ptplatform.order.v1.Order")
    assert {"order_id", "status", "version", "class_name"} <= set(order["required"])
    assert "create_time" not in order["required"], "a message field is printed only when set"
    listed = schema(document, "ptplatform.order.v1.ListOrdersResponse")
    assert listed["required"] == ["orders", "next_page_token"]
    assert "required" not in body_schema(document, "CancelOrder")
