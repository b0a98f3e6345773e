"""A platform configured for a production identity provider (its issuer, audience, JWKS
and public key) accepts that provider's tokens, at the gateway and in the services, and
no longer the development key's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ptctl.keys import ensure_keys
from ptctl.launcher import Platform, TrustedIssuer
from ptkit.auth import Role
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from tests.conftest import fresh_platform
from tests.e2e.rest import Rest
from tests.fault_kit import Desk
from tests.helpers import bearer

ISSUER = "https://login.studio.example"
AUDIENCE = "studio-api"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    """Stands in for the identity provider: its signing key and published JWKS."""
    return ensure_keys(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, idp: KeyFiles) -> Iterator[Platform]:
    trusted = TrustedIssuer(ISSUER, AUDIENCE, jwks_file=idp.jwks)
    var_dir: Path = tmp_path_factory.mktemp("studio")
    with fresh_platform(var_dir, contexts=["order"], jwt=trusted) as platform:
        yield platform


def test_the_providers_token_is_accepted_at_the_gateway_and_by_the_service(
    studio: Platform, idp: KeyFiles
) -> None:
    token = mint_token(idp, Role.CUSTOMER, "c-prod", issuer=ISSUER, audience=AUDIENCE)
    reply = Rest(studio.gateway_url).get("/v1/orders", token)
    assert reply.status == 200, reply.text
    with grpc.insecure_channel(studio.service_address("order")) as channel:
        pb_grpc.OrderServiceStub(channel).ListOrders(
            pb.ListOrdersRequest(), metadata=bearer(token), timeout=5
        )


def test_a_development_token_is_refused_once_a_provider_is_configured(studio: Platform) -> None:
    dev_token = studio.token("manager", "ops")
    assert Rest(studio.gateway_url).get("/v1/orders", dev_token).error()[:2] == (401, 16)
    with grpc.insecure_channel(studio.service_address("order")) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.OrderServiceStub(channel).ListOrders(
                pb.ListOrdersRequest(), metadata=bearer(dev_token), timeout=5
            )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_manager_svc_still_cancels_schedules_under_a_provider(
    tmp_path: Path, idp: KeyFiles
) -> None:
    """manager_svc signs its calls to trainer_svc with the platform's service key, which
    the services trust beside the provider's keys (the gateway trusts only the provider)."""
    trusted = TrustedIssuer(ISSUER, AUDIENCE, jwks_file=idp.jwks)
    contexts = ["order", "manager", "trainer"]
    with (
        fresh_platform(tmp_path, contexts=contexts, jwt=trusted) as studio,
        grpc.insecure_channel(studio.gateway_address) as channel,
    ):
        desk = Desk(studio, channel)
        desk.customer = bearer(
            mint_token(idp, Role.CUSTOMER, desk.customer_id, issuer=ISSUER, audience=AUDIENCE)
        )
        desk.manager = bearer(
            mint_token(idp, Role.MANAGER, "m-prod", issuer=ISSUER, audience=AUDIENCE)
        )
        order_id = desk.place_order()
        desk.assign(order_id, desk.register_trainer())

        desk.cancel_order(order_id)

        desk.schedule_in(order_id, (trainer.SCHEDULE_STATUS_CANCELLED,))
        desk.assignment_in(order_id, (manager.ASSIGNMENT_STATUS_CANCELLED,))
