"""A platform configured for a production identity provider (its issuer, audience, JWKS
and public key) accepts that provider's tokens, at the gateway and in the services, and
no longer the development key's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ptkit.auth import Role
from ptkit.launcher import Platform, TrustedIssuer
from ptkit.tokens import KeyFiles, ensure_keys, mint_token
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc
from tests.conftest import fresh_platform
from tests.e2e.rest import Rest
from tests.helpers import bearer

ISSUER = "https://login.studio.example"
AUDIENCE = "studio-api"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    """Stands in for the identity provider: its signing key and published JWKS."""
    return ensure_keys(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, idp: KeyFiles) -> Iterator[Platform]:
    trusted = TrustedIssuer(ISSUER, AUDIENCE, jwks_file=idp.jwks, public_key_file=idp.public_key)
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
