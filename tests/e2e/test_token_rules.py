"""Which tokens the platform takes, over real gRPC: through the gateway and straight at
the services' ports (a caller who skips Envoy gets the same answer).

A token must name its subject; the users' key signs user tokens only and the service
key signs manager_svc's service token only, so neither key can stand in for the other;
a service told to trust one key for both refuses to start. An open watch ends when its
token expires, naming the last sequence it sent, and ``ptctl watch`` goes on with a
fresh token from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from ptctl.launcher import ROOT, Platform
from ptctl.watch import NotificationWatcher
from ptkit.auth import Role
from ptkit.tokens import KeyFiles, key_id_of, mint_token
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
from tests.fault_kit import Desk
from tests.helpers import bearer, wait_for
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


def class_result_for(desk: Desk, class_name: str) -> None:
    """One class of the desk's customer held, so a notification is recorded for them."""
    order_id, trainer_id = desk.place_order(class_name), desk.register_trainer()
    desk.assign(order_id, trainer_id)
    desk.confirm(order_id, trainer_id)
    desk.trainers.RegisterClassResult(
        trainer.RegisterClassResultRequest(order_id=order_id, result="well done"),
        metadata=bearer(desk.platform.token("trainer", trainer_id)),
        timeout=5,
    )


WATCH_TTL_S = 4


def test_an_open_watch_ends_when_its_token_expires_with_its_resume_point(
    platform: Platform,
) -> None:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        desk = Desk(platform, channel)
        class_result_for(desk, "Expiring 1:1")
        token = platform.token("customer", desk.customer_id, ttl_seconds=WATCH_TTL_S)
        opened = time.monotonic()
        stream = desk.status.WatchNotifications(
            status.WatchNotificationsRequest(after_sequence=0), metadata=bearer(token)
        )
        received = []
        with pytest.raises(grpc.RpcError) as ended:
            for notification in stream:
                received.append(notification)
    took = time.monotonic() - opened
    refusal = refusal_of(ended.value)  # type: ignore[arg-type]
    assert (refusal.code, refusal.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_EXPIRED",
    )
    assert [n.customer_id for n in received] == [desk.customer_id]
    assert refusal.info.metadata["last_sequence"] == str(received[-1].sequence)
    assert took < WATCH_TTL_S + 3, f"the watch outlived its token by {took - WATCH_TTL_S:.1f}s"


def test_ptctl_watch_resumes_with_a_fresh_token_when_the_old_one_expires(
    platform: Platform,
) -> None:
    with grpc.insecure_channel(platform.gateway_address) as channel:
        desk = Desk(platform, channel)
        tokens: list[str] = []

        def fresh() -> tuple[tuple[str, str], ...]:
            tokens.append(platform.token("customer", desk.customer_id, ttl_seconds=2))
            return bearer(tokens[-1])

        watcher = NotificationWatcher(desk.status, desk.customer_id, fresh, after=0)
        received: list[str] = []
        watching = threading.Thread(
            target=lambda: received.extend(n.order_id for n in watcher.notifications()),
            daemon=True,
        )
        watching.start()
        try:
            wait_for(lambda: watcher.reconnects >= 2, timeout=20, what="two token expiries")
            class_result_for(desk, "After two expiries")
            wait_for(lambda: len(received) == 1, timeout=20, what="the notification")
        finally:
            watcher.close()
            watching.join(timeout=10)
    assert not watching.is_alive()
