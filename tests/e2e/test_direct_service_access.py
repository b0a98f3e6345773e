"""A service reached without the gateway trusts nothing it did not verify itself.

Every service checks the bearer JWT again (signature with the platform's public key,
RS256 only, expiry, issuer, audience, role): a caller who bypasses Envoy and forges
claims headers, or sends a token Envoy would have refused, gets UNAUTHENTICATED.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ptctl.launcher import Platform
from ptkit.auth import Role
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, key_id_of, mint_token
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.e2e.rest import expired_token, token_signed_by_another_key
from tests.helpers import bearer

MANAGER = "mgr-direct"

# One manager-only (or manager-allowed) read per service: what a forger would try.
CALLS: dict[str, tuple[Callable[[grpc.Channel], Any], str, Any]] = {
    "order": (
        order_grpc.OrderServiceStub,
        "ListOrders",
        order.ListOrdersRequest(customer_id="alice"),
    ),
    "manager": (manager_grpc.ManagerServiceStub, "ListTrainers", manager.ListTrainersRequest()),
    "trainer": (trainer_grpc.TrainerServiceStub, "ListSchedules", trainer.ListSchedulesRequest()),
    "status": (
        status_grpc.StatusServiceStub,
        "ListNotifications",
        status.ListNotificationsRequest(customer_id="alice"),
    ),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(role: str = "manager") -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": MANAGER,
        "role": role,
        "iat": now,
        "exp": now + 600,
    }


def unsigned_token() -> str:
    """``alg: none``: claims with no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def hmac_with_public_key(public_key: Path) -> str:
    """The algorithm-confusion attack: HS256 keyed with the (public) RSA key."""
    key_id = key_id_of(public_key.read_bytes())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key_id}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(public_key.read_bytes(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64(signature.digest())}"


def forged_metadata(platform: Platform, untrusted: Path) -> dict[str, tuple[tuple[str, str], ...]]:
    """What a caller who skips the gateway might send instead of a valid token."""
    claims = _b64(json.dumps(_claims()).encode())
    signing_key = platform.keys.private_key.read_bytes()
    return {
        "no token": (),
        "claims headers only": (
            ("x-jwt-payload", claims),
            ("x-pt-role", "manager"),
            ("x-pt-subject", MANAGER),
            ("x-forwarded-user", MANAGER),
        ),
        "claims headers and a junk token": (
            ("authorization", "Bearer junk"),
            ("x-jwt-payload", claims),
        ),
        "unsigned token": bearer(unsigned_token()),
        "HS256 keyed with the public key": bearer(hmac_with_public_key(platform.keys.public_key)),
        "signed by another key": bearer(token_signed_by_another_key(untrusted, "manager", MANAGER)),
        "expired": bearer(expired_token(platform, "manager", MANAGER)),
        "another issuer": bearer(
            mint_token(platform.keys, Role.MANAGER, MANAGER, issuer="https://evil.example")
        ),
        "another audience": bearer(
            mint_token(platform.keys, Role.MANAGER, MANAGER, audience="someone-else")
        ),
        "unknown role": bearer(
            jwt.encode(
                _claims("admin"),
                signing_key,
                algorithm="RS256",
                headers={"kid": key_id_of(platform.keys.public_key.read_bytes())},
            )
        ),
    }


FORGERIES = [
    "no token",
    "claims headers only",
    "claims headers and a junk token",
    "unsigned token",
    "HS256 keyed with the public key",
    "signed by another key",
    "expired",
    "another issuer",
    "another audience",
    "unknown role",
]


@pytest.fixture(scope="module")
def forgeries(
    platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[tuple[str, str], ...]]:
    return forged_metadata(platform, tmp_path_factory.mktemp("untrusted-jwt"))


@pytest.fixture(scope="module")
def channels(platform: Platform) -> Iterator[dict[str, grpc.Channel]]:
    opened = {c: grpc.insecure_channel(platform.service_address(c)) for c in CALLS}
    try:
        yield opened
    finally:
        for channel in opened.values():
            channel.close()


def call(channel: grpc.Channel, context: str, metadata: Any) -> grpc.StatusCode:
    stub_class, method, request = CALLS[context]
    try:
        getattr(stub_class(channel), method)(request, metadata=metadata, timeout=5)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("context", list(CALLS))
@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_service_reached_directly_refuses_what_it_cannot_verify(
    channels: dict[str, grpc.Channel],
    forgeries: dict[str, tuple[tuple[str, str], ...]],
    context: str,
    forgery: str,
) -> None:
    code = call(channels[context], context, forgeries[forgery])
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("context", list(CALLS))
def test_a_service_reached_directly_applies_the_same_rules_to_a_valid_token(
    platform: Platform, channels: dict[str, grpc.Channel], context: str
) -> None:
    as_manager = bearer(platform.token("manager", MANAGER))
    assert call(channels[context], context, as_manager) == grpc.StatusCode.OK
    as_customer = bearer(platform.token("customer", "bob"))
    assert call(channels[context], context, as_customer) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("context", list(CALLS))
def test_health_needs_no_token(
    platform: Platform, channels: dict[str, grpc.Channel], context: str
) -> None:
    reply = health_pb2_grpc.HealthStub(channels[context]).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
