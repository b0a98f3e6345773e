"""The web console's development sign-in through the gateway, as the sign-in page uses
it under ``make run``: a token for a user role that the API takes, refusals in the API's
error shape, and no such route where it is not switched on (every test platform but
this one, and Kubernetes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ptctl.console import DEV_SIGN_IN_PATH
from ptctl.k8s import render_envoy_config
from ptctl.launcher import Platform, PlatformConfig
from tests.e2e.rest import Rest, ok


@pytest.fixture(scope="module")
def signing_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rest]:
    config = PlatformConfig.ephemeral(
        tmp_path_factory.mktemp("dev-sign-in"), contexts=["order"], dev_sign_in=True
    )
    with Platform(config) as platform:
        yield Rest(platform.gateway_url)


def test_a_customer_signs_in_and_calls_the_api_with_the_token(signing_in: Rest) -> None:
    session = ok(signing_in.post(DEV_SIGN_IN_PATH, body={"role": "customer", "subject": "alice"}))
    assert (session["role"], session["subject"]) == ("customer", "alice")
    assert signing_in.post(DEV_SIGN_IN_PATH, body={}).headers["cache-control"] == "no-store"
    orders = signing_in.get("/v1/orders", token=session["token"])
    assert ok(orders) == {"orders": [], "next_page_token": ""}


def test_the_service_role_is_never_handed_out(signing_in: Rest) -> None:
    reply = signing_in.post(DEV_SIGN_IN_PATH, body={"role": "service", "subject": "manager_svc"})
    assert reply.error()[:2] == (400, 3)
    assert reply.json["details"][0]["reason"] == "INVALID_ROLE"
    assert reply.json["details"][1]["field_violations"][0]["field"] == "role"


def test_a_bad_subject_is_refused_with_the_field_named(signing_in: Rest) -> None:
    reply = signing_in.post(DEV_SIGN_IN_PATH, body={"role": "trainer", "subject": "<script>"})
    assert reply.error()[:2] == (400, 3)
    violation = reply.json["details"][1]["field_violations"][0]
    assert violation["field"] == "subject" and "letters, digits" in violation["description"]


def test_only_post_reaches_the_sign_in(signing_in: Rest) -> None:
    reply = signing_in.get(DEV_SIGN_IN_PATH)
    assert reply.error()[:2] == (404, 5)
    assert reply.json["details"][0]["reason"] == "NO_ROUTE"


def test_a_platform_without_it_has_no_sign_in(platform: Platform) -> None:
    reply = Rest(platform.gateway_url).post(
        DEV_SIGN_IN_PATH, body={"role": "manager", "subject": "kim"}
    )
    assert reply.status == 401, "no route: the path needs a token like any other"


def test_the_kubernetes_gateway_has_no_sign_in() -> None:
    config = render_envoy_config()
    assert DEV_SIGN_IN_PATH not in config and "dev_sign_in" not in config
