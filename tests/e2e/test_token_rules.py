"""Which tokens the platform takes, over real gRPC: through the gateway and straight at
the services' ports (a caller who skips Envoy gets the same answer).

A token must name its subject; the users' key signs user tokens only and the service
key signs manager_svc's service token only, so neither key can stand in for the other;
a service told to trust one key for both refuses to start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from ptctl.launcher import ROOT, Platform
from ptkit.auth import Role
from ptkit.tokens import KeyFiles, key_id_of, mint_token
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.helpers import bearer
from tests.rpc_details import refusal_of


def signed(platform: Platform, keys: KeyFiles, **claims: Any) -> str:
    """A token with exactly ``claims`` (plus issuer, audience and expiry), signed by ``keys``."""
    now = int(time.time())
    body = {
        "iss": platform.config.jwt.issuer,
        "aud": platform.config.jwt.audience,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(
        body,
        keys.private_key.read_bytes(),
        algorithm="RS256",
        headers={"kid": key_id_of(keys.public_key.read_bytes())},
    )


def list_notifications(address: str, token: str) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            status_grpc.StatusServiceStub(channel).ListNotifications(
                status.ListNotificationsRequest(), metadata=bearer(token), timeout=5
            )
    return refused.value


def both_doors(platform: Platform) -> list[str]:
    return [platform.gateway_address, platform.service_address("status")]


@pytest.mark.parametrize("subject", ["", None], ids=["empty sub", "no sub"])
def test_a_token_without_a_subject_is_refused_at_every_door(
    platform: Platform, subject: str | None
) -> None:
    claims: dict[str, Any] = {"role": "customer"}
    if subject is not None:
        claims["sub"] = subject
    token = signed(platform, platform.keys, **claims)
    for address in both_doors(platform):
        refusal = refusal_of(list_notifications(address, token))  # type: ignore[arg-type]
        assert refusal.code is grpc.StatusCode.UNAUTHENTICATED, address
        assert refusal.info.reason == "INVALID_SUBJECT", address


def test_a_customer_token_signed_with_the_service_key_is_refused(platform: Platform) -> None:
    """Whoever holds manager_svc's key still cannot mint a user token."""
    token = mint_token(
        platform.service_keys,
        Role.CUSTOMER,
        "c-forged",
        issuer=platform.config.jwt.issuer,
        audience=platform.config.jwt.audience,
    )
    at_gateway = list_notifications(platform.gateway_address, token)
    assert at_gateway.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    direct = refusal_of(list_notifications(platform.service_address("status"), token))  # type: ignore[arg-type]
    assert (direct.code, direct.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "KEY_NOT_TRUSTED_FOR_ROLE",
    )


def test_a_service_token_signed_with_the_users_key_is_refused(platform: Platform) -> None:
    """Whoever holds the users' key (or an identity provider's) cannot act as manager_svc."""
    token = signed(platform, platform.keys, sub="manager_svc", role="service")
    with grpc.insecure_channel(platform.service_address("trainer")) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            trainer_grpc.TrainerServiceStub(channel).CancelSchedule(
                trainer.CancelScheduleRequest(
                    order_id="00000000-0000-4000-8000-000000000001", reason="forged"
                ),
                metadata=bearer(token),
                timeout=5,
            )
    refusal = refusal_of(refused.value)  # type: ignore[arg-type]
    assert (refusal.code, refusal.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "KEY_NOT_TRUSTED_FOR_ROLE",
    )


def test_a_service_told_to_trust_one_key_for_users_and_services_refuses_to_start(
    platform: Platform, tmp_path: Path
) -> None:
    env = {
        **platform.services["status"][0].env,
        "PT_VAR_DIR": str(tmp_path),
        "PT_STATUS_PORT": "0",
        "PT_STATUS_METRICS_PORT": "0",
        "PT_JWT_SERVICE_KEY_FILE": str(platform.users_trust),
    }
    started = subprocess.run(
        [sys.executable, "-m", "status_svc"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert "the service key must be a key pair of its own" in started.stderr
