"""manager_svc's outbound trainer_svc client against a real grpc.aio TrainerService."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from manager_svc.adapters.trainer_client import (
    SERVICE_SUBJECT,
    ServiceToken,
    TrainerCallSettings,
    TrainerClient,
)
from manager_svc.application.ports import ScheduleCancelRefused, ScheduleCancelUnavailable
from ptctl.keys import ensure_keys
from ptctl.launcher import free_port
from ptkit.auth import Caller, JwtSettings, Role, TokenVerifier
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles
from ptplatform.trainer.v1 import trainer_service_pb2 as pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

ORDER_ID = "11111111-1111-4111-8111-111111111111"
HANG = "hang"
LOADED_RUNNER_HEADROOM_S = 3.0
"""Added to a time bound: a loaded 2-core runner may be slow, an unbounded retry far slower."""

MakeClient = Callable[..., TrainerClient]


@dataclass
class ScriptedTrainerService(pb_grpc.TrainerServiceServicer):
    """Answers CancelSchedule with the scripted outcomes in turn (then OK): a status code
    to fail with, or HANG to never answer."""

    script: list[grpc.StatusCode | str] = field(default_factory=list)
    requests: list[pb.CancelScheduleRequest] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    async def CancelSchedule(
        self, request: pb.CancelScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.Schedule:
        self.requests.append(request)
        self.authorizations.append(
            dict(context.invocation_metadata() or ()).get("authorization", "")
        )
        outcome = self.script.pop(0) if self.script else None
        if outcome == HANG:
            await asyncio.Event().wait()
        if isinstance(outcome, grpc.StatusCode):
            await context.abort(outcome, f"scripted {outcome.name}")
        return pb.Schedule(order_id=request.order_id, status=pb.SCHEDULE_STATUS_CANCELLED)


@dataclass
class RunningTrainerService:
    address: str
    service: ScriptedTrainerService


@pytest.fixture
async def trainer_service() -> AsyncIterator[RunningTrainerService]:
    service = ScriptedTrainerService()
    server = grpc.aio.server()
    pb_grpc.add_TrainerServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield RunningTrainerService(f"127.0.0.1:{port}", service)
    finally:
        await server.stop(0)


def settings(address: str, **overrides: float) -> TrainerCallSettings:
    """Fast backoff so tests take fractions of a second; overrides as keyword arguments."""
    defaults = TrainerCallSettings(
        address=address,
        call_timeout_seconds=1.0,
        attempts=3,
        max_seconds=3.0,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
    )
    return dataclasses.replace(defaults, **overrides)


@pytest.fixture
async def make_client(keys: KeyFiles) -> AsyncIterator[MakeClient]:
    clients: list[TrainerClient] = []

    def make(address: str, **overrides: float) -> TrainerClient:
        client = TrainerClient(settings(address, **overrides), ServiceToken(keys))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_cancel_schedule_sends_order_reason_and_a_manager_token(
    trainer_service: RunningTrainerService, make_client: MakeClient, keys: KeyFiles
) -> None:
    await make_client(trainer_service.address).cancel_schedule(ORDER_ID, "moved away")
    [request] = trainer_service.service.requests
    assert (request.order_id, request.reason) == (ORDER_ID, "moved away")
    users = ensure_keys(keys.directory / "users")
    verifier = TokenVerifier(JwtSettings(users.jwks, DEV_ISSUER, DEV_AUDIENCE, keys.jwks))
    caller = verifier.caller_from(trainer_service.service.authorizations[0])
    assert caller == Caller(subject=SERVICE_SUBJECT, role=Role.SERVICE)


async def test_unavailable_trainer_svc_is_retried_until_it_answers(
    trainer_service: RunningTrainerService, make_client: MakeClient
) -> None:
    trainer_service.service.script = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    await make_client(trainer_service.address, attempts=3).cancel_schedule(ORDER_ID, "x")
    assert len(trainer_service.service.requests) == 3


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    ],
)
async def test_other_transient_codes_are_retried(
    trainer_service: RunningTrainerService, make_client: MakeClient, code: grpc.StatusCode
) -> None:
    trainer_service.service.script = [code]
    await make_client(trainer_service.address).cancel_schedule(ORDER_ID, "x")
    assert len(trainer_service.service.requests) == 2


async def test_refusal_is_reported_at_once_and_never_retried(
    trainer_service: RunningTrainerService, make_client: MakeClient
) -> None:
    trainer_service.service.script = [grpc.StatusCode.FAILED_PRECONDITION]
    with pytest.raises(ScheduleCancelRefused, match="scripted FAILED_PRECONDITION"):
        await make_client(trainer_service.address).cancel_schedule(ORDER_ID, "x")
    assert len(trainer_service.service.requests) == 1


async def test_permanent_error_is_not_retried(
    trainer_service: RunningTrainerService, make_client: MakeClient
) -> None:
    trainer_service.service.script = [grpc.StatusCode.PERMISSION_DENIED]
    with pytest.raises(ScheduleCancelUnavailable, match="PERMISSION_DENIED"):
        await make_client(trainer_service.address).cancel_schedule(ORDER_ID, "x")
    assert len(trainer_service.service.requests) == 1


async def test_gives_up_after_the_bounded_number_of_attempts(
    trainer_service: RunningTrainerService, make_client: MakeClient
) -> None:
    trainer_service.service.script = [grpc.StatusCode.UNAVAILABLE] * 10
    with pytest.raises(ScheduleCancelUnavailable, match="UNAVAILABLE"):
        await make_client(trainer_service.address, attempts=4).cancel_schedule(ORDER_ID, "x")
    assert len(trainer_service.service.requests) == 4


async def test_gives_up_within_the_bounded_time_when_trainer_svc_hangs(
    trainer_service: RunningTrainerService, make_client: MakeClient
) -> None:
    trainer_service.service.script = [HANG] * 50
    # Unbounded, 50 attempts of 0.3 s each would take 15 s.
    client = make_client(
        trainer_service.address, call_timeout_seconds=0.3, attempts=50, max_seconds=1.0
    )
    started = time.monotonic()
    with pytest.raises(ScheduleCancelUnavailable, match="DEADLINE_EXCEEDED"):
        await client.cancel_schedule(ORDER_ID, "x")
    assert time.monotonic() - started < 1.0 + LOADED_RUNNER_HEADROOM_S
    assert len(trainer_service.service.requests) >= 2


async def test_gives_up_within_the_bounded_time_when_nothing_listens(
    make_client: MakeClient,
) -> None:
    # Unbounded, 50 attempts with backoff between them would take tens of seconds.
    client = make_client(
        f"127.0.0.1:{free_port()}", call_timeout_seconds=0.2, attempts=50, max_seconds=0.8
    )
    started = time.monotonic()
    with pytest.raises(ScheduleCancelUnavailable):
        await client.cancel_schedule(ORDER_ID, "x")
    assert time.monotonic() - started < 0.8 + LOADED_RUNNER_HEADROOM_S


def test_service_token_is_reused_until_shortly_before_expiry(keys: KeyFiles) -> None:
    now = [1_000_000.0]
    token = ServiceToken(keys, ttl_seconds=300, refresh_before_seconds=60, clock=lambda: now[0])
    first = token()
    now[0] += 200
    assert token() == first
    now[0] += 50
    assert token() != first
