"""The gateway fuzzed from its own OpenAPI document (schemathesis 4), as a new user of each
role would: generated valid and invalid requests for every operation, with a customer's,
a manager's and a trainer's token.

Each response must be no 5xx, carry a documented status code and content type, and match
its documented schema. A write the API refused (4xx) must have written nothing: the
state it would have changed, read back as a manager before and after, is the same.

Bounded to about a minute: a few examples per operation and role, no shrinking (a failure
is reported with the request that caused it, as curl).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ptctl.envoy import GatewaySettings, RateLimitSettings
from ptctl.launcher import ROOT, Platform
from tests.conftest import fresh_platform
from tests.e2e.rest import Rest, ok

OPENAPI = ROOT / "build" / "openapi.json"
EXAMPLES_PER_OPERATION = 5
CUSTOMER = "fuzz-customer"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of its own, the rate limit lifted: the fuzzer is one client, fast."""
    gateway = GatewaySettings(rate_limit=RateLimitSettings.unlimited())
    with fresh_platform(tmp_path_factory.mktemp("fuzzed"), gateway=gateway) as platform:
        yield platform


@pytest.fixture(scope="module")
def rest(fuzzed: Platform) -> Rest:
    return Rest(fuzzed.gateway_url)


@pytest.fixture(scope="module")
def manager(fuzzed: Platform) -> str:
    return fuzzed.token("manager", "fuzz-manager")


@pytest.fixture(scope="module")
def tokens(fuzzed: Platform, rest: Rest, manager: str) -> dict[str, str]:
    """A token per role; the trainer is one on the roster, the customer has an order."""
    trainer = ok(rest.post("/v1/trainers", manager, {"name": "Fuzz Trainer"}))
    customer = fuzzed.token("customer", CUSTOMER)
    body = {
        "customer_name": "Fuzz",
        "class_name": "Fuzz 1:1",
        "preferred_start": "2030-01-07T10:00:00Z",
    }
    ok(rest.post("/v1/orders", customer, body))
    return {
        "customer": customer,
        "manager": manager,
        "trainer": fuzzed.token("trainer", trainer["trainer_id"]),
    }


# The document `make openapi` wrote, the one the gateway serves (test_api_docs.py checks
# they are the same). Loaded at import: schemathesis' parametrize makes one test per
# operation at collection (its fixture-based loader does not run on pytest 9.2).
schema = schemathesis.openapi.from_dict(json.loads(OPENAPI.read_text()))
schema.config.update(request_timeout=10)
schema.config.generation.update(modes=["positive", "negative"])


# -- what a refused write must leave as it was ------------------------------------------


def pages(rest: Rest, manager: str, path: str, items: str) -> frozenset[str]:
    """Every item's id of a List read to its last page."""
    ids: set[str] = set()
    token = ""
    while True:
        query = urllib.parse.urlencode({"page_size": 100, "page_token": token})
        body = ok(rest.get(f"{path}?{query}", manager))
        ids |= {item.get("order_id") or item.get("trainer_id") for item in body[items]}
        token = body.get("next_page_token", "")
        if not token:
            return frozenset(ids)


def read_back(rest: Rest, manager: str, path: str, *fields: str) -> tuple[Any, ...]:
    """One resource as a manager reads it: its status code and the fields a write sets."""
    reply = rest.get(path, manager)
    if reply.status != 200:
        return (reply.status,)
    body = reply.json
    return (reply.status, *(body.get(name) for name in fields))


StateReader = Callable[[Rest, str, str], object]
"""(gateway, manager token, the resource's quoted path id) -> what a write would change."""

WRITES: dict[tuple[str, str], StateReader] = {
    ("POST", "/v1/orders"): lambda r, m, _: pages(r, m, "/v1/orders", "orders"),
    ("POST", "/v1/trainers"): lambda r, m, _: pages(r, m, "/v1/trainers", "trainers"),
    ("POST", "/v1/orders/{order_id}:cancel"): lambda r, m, order: read_back(
        r, m, f"/v1/orders/{order}", "status", "cancel_reason"
    ),
    ("POST", "/v1/assignments/{order_id}:assign"): lambda r, m, order: read_back(
        r, m, f"/v1/assignments/{order}", "trainer_id"
    ),
    **{
        ("POST", f"/v1/schedules/{{order_id}}:{verb}"): lambda r, m, order: read_back(
            r, m, f"/v1/schedules/{order}", "status", "start_time", "result", "cancel_reason"
        )
        for verb in ("confirm", "result", "cancel")
    },
}


def state_before(
    case: schemathesis.Case, rest: Rest, manager: str
) -> tuple[StateReader, str, object] | None:
    reader = WRITES.get((case.method.upper(), case.path))
    if reader is None:
        return None
    order_id = urllib.parse.quote(str((case.path_parameters or {}).get("order_id", "")), safe="")
    return reader, order_id, reader(rest, manager, order_id)


def test_the_watch_on_writes_sees_a_write(rest: Rest, manager: str, tokens: dict) -> None:
    """The state readers are not blind: an accepted place and cancel show in them."""
    orders_before = WRITES["POST", "/v1/orders"](rest, manager, "")
    body = {
        "customer_name": "W",
        "class_name": "Watch 1:1",
        "preferred_start": "2030-01-07T10:00:00Z",
    }
    order = ok(rest.post("/v1/orders", tokens["customer"], body))
    assert WRITES["POST", "/v1/orders"](rest, manager, "") == orders_before | {order["order_id"]}
    cancel = WRITES["POST", "/v1/orders/{order_id}:cancel"]
    before = cancel(rest, manager, order["order_id"])
    ok(rest.post(f"/v1/orders/{order['order_id']}:cancel", tokens["customer"], {"reason": "r"}))
    assert cancel(rest, manager, order["order_id"]) != before


def test_every_write_the_document_names_is_watched() -> None:
    document = json.loads(OPENAPI.read_text())
    posts = {("POST", path) for path, item in document["paths"].items() if "post" in item}
    assert posts == set(WRITES)


FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)


def holds_to_the_document(case: schemathesis.Case, token: str, rest: Rest, manager: str) -> None:
    before = state_before(case, rest, manager)
    response = case.call(rest.base_url, headers={"authorization": f"Bearer {token}"})
    case.validate_response(response, checks=CHECKS)
    if before is not None and 400 <= response.status_code < 500:
        reader, order_id, state = before
        assert reader(rest, manager, order_id) == state, (
            f"a refused {case.method} {case.formatted_path} ({response.status_code}) wrote: "
            f"{response.text[:300]}"
        )


# One test per role (schemathesis' parametrize takes no pytest parameters of its own).
@schema.parametrize()
@FUZZ
def test_a_customer_gets_what_the_document_says(
    case: schemathesis.Case, tokens: dict[str, str], rest: Rest, manager: str
) -> None:
    holds_to_the_document(case, tokens["customer"], rest, manager)


@schema.parametrize()
@FUZZ
def test_a_manager_gets_what_the_document_says(
    case: schemathesis.Case, tokens: dict[str, str], rest: Rest, manager: str
) -> None:
    holds_to_the_document(case, tokens["manager"], rest, manager)


@schema.parametrize()
@FUZZ
def test_a_trainer_gets_what_the_document_says(
    case: schemathesis.Case, tokens: dict[str, str], rest: Rest, manager: str
) -> None:
    holds_to_the_document(case, tokens["trainer"], rest, manager)
