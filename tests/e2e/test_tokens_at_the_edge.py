"""Tokens at the gateway: only the Authorization header carries one (`?access_token=` is
refused with 401 and says where the token goes), and no bearer token reaches a log."""

from __future__ import annotations

import uuid

import grpc

from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.e2e.rest import Rest, access_log_entry
from tests.helpers import wait_for

UNAUTHENTICATED = 16


def test_a_token_in_the_url_is_refused_with_401_naming_the_authorization_header(
    platform: Platform,
) -> None:
    token = platform.token("customer", "url-token")
    reply = Rest(platform.gateway_url).get(f"/v1/orders?page_size=5&access_token={token}")
    assert reply.error()[:2] == (401, UNAUTHENTICATED)
    assert reply.json["details"][0]["reason"] == "TOKEN_IN_URL"
    assert "Authorization header" in reply.json["message"]
    entry = wait_for(
        lambda: access_log_entry(platform, reply.headers["x-request-id"]), what="access log line"
    )
    assert entry["path"] == "/v1/orders", "the query, and the token in it, is not logged"


def test_no_bearer_token_reaches_a_log(platform: Platform) -> None:
    rest = Rest(platform.gateway_url)
    token = platform.token("customer", f"logged-{uuid.uuid4().hex[:8]}")
    calls = [
        rest.get("/v1/orders", token),
        rest.get(f"/v1/orders?access_token={token}"),
        rest.get(f"/v1/orders?access_token={token}", token),
        rest.get("/v1/orders", headers={"authorization": f"Bearer {token}", "x-request-id": token}),
    ]
    with grpc.insecure_channel(platform.gateway_address) as channel:
        pb_grpc.OrderServiceStub(channel).ListOrders(
            pb.ListOrdersRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5
        )
    for reply in calls:
        wait_for(
            lambda r=reply: access_log_entry(platform, r.headers["x-request-id"]),
            what="access log line",
        )
    signature = token.rsplit(".", 1)[1]
    for log in (platform.var_dir / "log").iterdir():
        assert signature not in log.read_text(errors="replace"), f"a token in {log.name}"
