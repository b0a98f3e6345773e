"""The strict-input filter's schema, rendered from the descriptor set: which fields each
REST route takes, under which JSON names and types, and where (URL, query, body). The
filter itself runs in Envoy: tests/e2e/test_input_limits.py."""

from __future__ import annotations

import pytest

from ptctl import gateway_errors, strict_json
from ptctl.envoy import PUBLIC_SERVICES
from ptctl.http_rules import HttpRule, PublicApi
from ptctl.launcher import DESCRIPTOR


@pytest.fixture(scope="module")
def api() -> PublicApi:
    return PublicApi.load(DESCRIPTOR, tuple(PUBLIC_SERVICES.values()))


def rule(api: PublicApi, verb: str, path: str) -> HttpRule:
    return next(r for r in api.rules if (r.verb, r.path) == (verb, path))


def test_a_message_knows_each_field_by_its_proto_and_json_name(api: PublicApi) -> None:
    place = strict_json.messages([rule(api, "POST", "/v1/orders").input])[
        "ptplatform.order.v1.PlaceOrderRequest"
    ]
    assert place["names"]["customer_name"] == "customer_name"
    assert place["names"]["customerName"] == "customer_name"
    assert "colour" not in place["names"]
    assert place["fields"]["customer_name"] == {"kind": "string"}
    assert place["fields"]["preferred_start"] == {"kind": "string"}, "a Timestamp is a string"


def test_json_kinds_follow_the_proto_types(api: PublicApi) -> None:
    confirm = strict_json.messages([rule(api, "POST", "/v1/schedules/{order_id}:confirm").input])
    fields = confirm["ptplatform.trainer.v1.ConfirmScheduleRequest"]["fields"]
    assert fields["duration_minutes"] == {"kind": "int"}
    listing = strict_json.messages([rule(api, "GET", "/v1/assignments").input])
    assert listing["ptplatform.manager.v1.ListAssignmentsRequest"]["fields"]["status"] == {
        "kind": "enum"
    }


def test_a_body_route_takes_no_query_and_a_get_every_unbound_field(api: PublicApi) -> None:
    assert strict_json.query_parameters(rule(api, "POST", "/v1/orders")) == {}
    listed = strict_json.query_parameters(rule(api, "GET", "/v1/orders"))
    assert set(listed) == {
        "customer_id",
        "customerId",
        "page_size",
        "pageSize",
        "page_token",
        "pageToken",
    }
    results = rule(api, "GET", "/v1/status/customers/{customer_id}/results")
    assert "customer_id" not in strict_json.query_parameters(results), "the path binds it"


def test_a_route_matches_its_concrete_paths_only(api: PublicApi) -> None:
    assert strict_json.lua_pattern(rule(api, "POST", "/v1/orders/{order_id}:cancel")) == (
        "^%/v1%/orders%/[^/]+%:cancel$"
    )


def test_the_most_literal_route_comes_first(api: PublicApi) -> None:
    templates = [entry["template"] for entry in strict_json.routes(api)]
    assert templates.index("/v1/orders/{order_id}:cancel") < templates.index(
        "/v1/orders/{order_id}"
    )
    cancel = next(
        e for e in strict_json.routes(api) if e["template"] == "/v1/orders/{order_id}:cancel"
    )
    assert (cancel["method"], cancel["body"], cancel["path_fields"]) == (
        "POST",
        "*",
        {"order_id": True},
    )


def test_lua_literals_escape_what_lua_would_read_otherwise() -> None:
    assert strict_json.lua_literal({"a": [1, True, 'q"\\\n']}) == (
        '{ ["a"] = { 1, true, "q\\034\\092\\010" } }'
    )
    assert strict_json.lua_literal({}) == "{}"


def test_the_rendered_source_carries_the_tables_then_the_filter(api: PublicApi) -> None:
    source = strict_json.render_lua(api, strict_json.Limits(max_body_bytes=100, max_url_bytes=50))
    tables, found, _ = source.partition(strict_json.LUA_SOURCE.read_text())
    assert found, "the filter's source follows the tables whole"
    for name in ("ROUTES = ", "MESSAGES = ", "LIMITS = ", "ERRORS = "):
        assert name in tables
    assert '["max_body_bytes"] = 100' in tables
    assert f'["domain"] = "{gateway_errors.DOMAIN}"' in tables
    for error in gateway_errors.STRICT_INPUT:
        assert f'["{error.reason}"] = {{ ["status"] = {error.status}' in tables
    assert strict_json.render_lua(api, strict_json.Limits(100, 50)) == source, "deterministic"
