"""TLS on the whole path (PT_TLS=1): real Envoy, nats-server and the four services.

A client that trusts the local CA reaches the gateway over TLS (gRPC and HTTP/JSON);
a plaintext client is refused. Envoy reaches the services over mutual TLS, so a direct
call to a service without a client certificate gets no connection at all. manager_svc
reaches the internal listener over mutual TLS, which admits its certificate only.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ptctl.launcher import Platform, PlatformConfig
from ptctl.tls import LocalCa, service_name
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.helpers import bearer, wait_for

CONTEXTS = ("order", "manager", "trainer", "status")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    config = PlatformConfig.ephemeral(tmp_path_factory.mktemp("tls"), contexts=CONTEXTS, tls=True)
    with Platform(config) as running:
        yield running


@pytest.fixture(scope="module")
def ca(platform: Platform) -> LocalCa:
    assert platform.tls is not None
    return platform.tls


def trusting(ca: LocalCa) -> grpc.ChannelCredentials:
    """What a client of the gateway has: the CA, no certificate of its own."""
    return grpc.ssl_channel_credentials(root_certificates=ca.ca_file.read_bytes())


def place_order(channel: grpc.Channel, platform: Platform, customer: str) -> order.Order:
    return order_grpc.OrderServiceStub(channel).PlaceOrder(
        order.PlaceOrderRequest(
            customer_id=customer,
            customer_name="Kim Mina",
            class_name="Pilates 1:1",
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(platform.token("customer", customer)),
        timeout=10,
    )


def refused(call: grpc.UnaryUnaryMultiCallable, request: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=5, **kwargs)
    return caught.value


def test_a_client_trusting_the_ca_places_an_order_over_tls(platform: Platform, ca: LocalCa) -> None:
    with grpc.secure_channel(platform.gateway_address, trusting(ca)) as channel:
        placed = place_order(channel, platform, "cust-tls")
    assert placed.order_id and placed.status == order.ORDER_STATUS_PLACED


def test_http_json_clients_reach_the_gateway_over_https(platform: Platform, ca: LocalCa) -> None:
    assert platform.gateway_url.startswith("https://")
    request = urllib.request.Request(
        f"{platform.gateway_url}/v1/orders?customer_id=cust-tls",
        headers={"Authorization": f"Bearer {platform.token('customer', 'cust-tls')}"},
    )
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        assert response.status == 200
        assert "orders" in json.loads(response.read())


def test_a_plaintext_client_is_refused_at_the_gateway(platform: Platform) -> None:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        error = refused(
            order_grpc.OrderServiceStub(channel).PlaceOrder,
            order.PlaceOrderRequest(customer_id="cust-plain", class_name="Yoga"),
            metadata=bearer(platform.token("customer", "cust-plain")),
        )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://{platform.gateway_address}/v1/orders", timeout=5)


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_service_reached_without_a_client_certificate_refuses_the_connection(
    platform: Platform, ca: LocalCa, context: str
) -> None:
    address = platform.service_address(context)
    check = health_pb2.HealthCheckRequest()
    for channel in (grpc.secure_channel(address, trusting(ca)), grpc.insecure_channel(address)):
        with channel:
            error = refused(health_pb2_grpc.HealthStub(channel).Check, check)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    # the same call with a certificate of the CA: the service is up, only the caller lacked one
    with grpc.secure_channel(address, ca.client_credentials()) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(check, timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def internal_call(platform: Platform, credentials: grpc.ChannelCredentials) -> grpc.RpcError:
    address = f"127.0.0.1:{platform.config.gateway.internal.port}"
    with grpc.secure_channel(address, credentials) as channel:
        return refused(
            trainer_grpc.TrainerServiceStub(channel).CancelSchedule,
            trainer.CancelScheduleRequest(order_id=str(uuid.uuid4()), reason="probe"),
        )


def test_the_internal_listener_admits_manager_svcs_certificate_only(
    platform: Platform, ca: LocalCa
) -> None:
    for stranger in (trusting(ca), ca.client_credentials("ptctl")):
        assert internal_call(platform, stranger).code() == grpc.StatusCode.UNAVAILABLE
    # manager_svc's certificate gets through TLS; the call itself needs the service token
    reached = internal_call(platform, ca.client_credentials(service_name("manager")))
    assert reached.code() != grpc.StatusCode.UNAVAILABLE, reached


def status_of(get: Callable[[], Any]) -> int:
    """The status of what ``get`` reads; 0 while it does not exist yet."""
    try:
        return get().status
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise


def test_a_cancellation_reaches_trainer_svc_through_the_internal_listener_over_tls(
    platform: Platform, ca: LocalCa
) -> None:
    managers = bearer(platform.token("manager", "manager-tls"))
    with grpc.secure_channel(platform.gateway_address, trusting(ca)) as channel:
        assignments = manager_grpc.ManagerServiceStub(channel)
        schedules = trainer_grpc.TrainerServiceStub(channel)
        placed = place_order(channel, platform, "cust-cancel")
        coach = assignments.RegisterTrainer(
            manager.RegisterTrainerRequest(name="Tom Lee", request_id=str(uuid.uuid4())),
            metadata=managers,
            timeout=10,
        )
        coach_auth = bearer(platform.token("trainer", coach.trainer_id))

        def assignment() -> int:
            return status_of(
                lambda: assignments.GetAssignment(
                    manager.GetAssignmentRequest(order_id=placed.order_id),
                    metadata=managers,
                    timeout=5,
                )
            )

        def schedule() -> int:
            return status_of(
                lambda: schedules.GetSchedule(
                    trainer.GetScheduleRequest(order_id=placed.order_id),
                    metadata=coach_auth,
                    timeout=5,
                )
            )

        wait_for(
            lambda: assignment() == manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,
            timeout=20,
            what="the assignment opened",
        )
        assignments.AssignTrainer(
            manager.AssignTrainerRequest(order_id=placed.order_id, trainer_id=coach.trainer_id),
            metadata=managers,
            timeout=10,
        )
        wait_for(
            lambda: schedule() == trainer.SCHEDULE_STATUS_REQUESTED,
            timeout=20,
            what="the schedule requested",
        )
        order_grpc.OrderServiceStub(channel).CancelOrder(
            order.CancelOrderRequest(order_id=placed.order_id, reason="plans changed"),
            metadata=bearer(platform.token("customer", "cust-cancel")),
            timeout=10,
        )
        # manager_svc's CancelSchedule, through the internal listener, cancels the schedule;
        # the assignment is cancelled only after trainer_svc answered
        wait_for(
            lambda: schedule() == trainer.SCHEDULE_STATUS_CANCELLED,
            timeout=30,
            what="the schedule cancelled by manager_svc",
        )
        wait_for(
            lambda: assignment() == manager.ASSIGNMENT_STATUS_CANCELLED,
            timeout=30,
            what="the assignment cancelled",
        )


def test_keys_and_certificates_are_private_files(ca: LocalCa) -> None:
    files = sorted(Path(ca.directory).iterdir())
    assert ca.ca_file in files and ca.pair("gateway").key in files
    assert {f.name: f.stat().st_mode & 0o777 for f in files} == {f.name: 0o600 for f in files}
    assert ca.directory.stat().st_mode & 0o777 == 0o700
