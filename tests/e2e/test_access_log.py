"""The gateway's access log (Envoy's stdout, ``<var>/log/envoy.log``: one JSON object per
call); the gateway listens on loopback (its admin: tests/e2e/test_envoy_admin.py)."""

from __future__ import annotations

import uuid

import grpc
import yaml

from ptctl.launcher import Platform
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.e2e.rest import Rest, access_log_entry
from tests.helpers import bearer, wait_for


def test_an_http_call_is_logged_with_method_status_duration_and_request_id(
    platform: Platform,
) -> None:
    order_id = str(uuid.uuid4())
    reply = Rest(platform.gateway_url).get(
        f"/v1/orders/{order_id}", platform.token("customer", "logged")
    )
    assert reply.status == 404
    request_id = reply.headers["x-request-id"]

    entry = wait_for(lambda: access_log_entry(platform, request_id), what="access log line")
    assert entry["method"] == "GET", "the REST method, not the transcoded POST"
    assert entry["path"] == f"/v1/orders/{order_id}"
    assert entry["grpc_method"] == "/ptplatform.order.v1.OrderService/GetOrder"
    assert entry["status"] == 404
    assert isinstance(entry["duration_ms"], int) and entry["duration_ms"] >= 0
    assert entry["upstream"].startswith("127.0.0.1:")


def test_a_grpc_call_is_logged_with_envoys_request_id_and_the_one_the_client_sent(
    platform: Platform,
) -> None:
    sent = f"trace-{uuid.uuid4()}"
    auth = bearer(platform.token("customer", "logged"))
    with grpc.insecure_channel(platform.gateway_address) as channel:
        _, call = pb_grpc.OrderServiceStub(channel).ListOrders.with_call(
            pb.ListOrdersRequest(), metadata=(*auth, ("x-request-id", sent)), timeout=5
        )
    request_id = dict(call.initial_metadata())["x-request-id"]
    assert request_id != sent, "Envoy makes its own request id, whatever the client sends"
    uuid.UUID(request_id)

    entry = wait_for(lambda: access_log_entry(platform, request_id), what="access log line")
    assert (entry["method"], entry["status"], entry["grpc_status"]) == ("POST", 200, "OK")
    assert entry["grpc_method"] == "/ptplatform.order.v1.OrderService/ListOrders"
    assert entry["client_request_id"] == sent


def test_a_refused_call_is_logged_too(platform: Platform) -> None:
    reply = Rest(platform.gateway_url).get("/v1/orders")
    entry = wait_for(
        lambda: access_log_entry(platform, reply.headers["x-request-id"]), what="access log line"
    )
    assert (entry["method"], entry["status"], entry["upstream"]) == ("GET", 401, None)


def test_the_gateway_listens_on_loopback_only(platform: Platform) -> None:
    config = yaml.safe_load(platform.envoy_config.read_text())
    public = {
        listener["name"]: listener["address"]["socket_address"]["address"]
        for listener in config["static_resources"]["listeners"]
    }
    assert public["gateway"] == "127.0.0.1", "the launcher keeps everything on loopback"
