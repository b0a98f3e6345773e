"""trainer_svc served for real (in-process on a free port, real nats-server), called with
real gRPC and signed tokens: status codes, authorization, the TrainerAssigned policy."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.errors import NotFoundError

from ptctl.keys import ensure_keys
from ptctl.launcher import ManagedProcess, free_port, grpc_serving
from ptkit.auth import Role
from ptkit.config import Env
from ptkit.events import from_timestamp, to_timestamp
from ptkit.messaging import JetStream
from ptkit.runtime import ServiceSettings
from ptkit.tokens import KeyFiles, mint_token
from ptplatform.events.v1 import events_pb2
from ptplatform.trainer.v1 import trainer_service_pb2 as pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from tests.conftest import NatsServer
from tests.helpers import bearer, eventually, wait_for
from tests.rpc_details import refusal_of
from trainer_svc.main import DEFAULT_PORT, serve

TEN = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)


@dataclass
class TrainerService:
    address: str
    nats_url: str
    keys: KeyFiles
    stub: pb_grpc.TrainerServiceStub
    jetstream: JetStream

    def metadata(self, role: str, subject: str) -> tuple[tuple[str, str]]:
        signer = service_keys(self.keys) if role == Role.SERVICE else self.keys
        return bearer(mint_token(signer, Role(role), subject))

    async def publish_trainer_assigned(
        self, order_id: str, trainer_id: str, version: int = 1
    ) -> None:
        envelope = events_pb2.EventEnvelope(
            event_id=str(uuid.uuid4()),
            event_type="TrainerAssigned",
            order_id=order_id,
            aggregate_version=version,
            source="manager",
            trainer_assigned=events_pb2.TrainerAssigned(
                order_id=order_id,
                trainer_id=trainer_id,
                trainer_name=trainer_id.title(),
                customer_id="alice",
                class_name="Pilates 1:1",
            ),
        )
        await self.jetstream.publish(
            "pt.manager.TrainerAssigned", envelope.SerializeToString(), envelope.event_id
        )

    async def find(self, order_id: str) -> pb.Schedule | None:
        try:
            return await self.stub.GetSchedule(
                pb.GetScheduleRequest(order_id=order_id), metadata=self.metadata("manager", "m-1")
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def requested(self, trainer_id: str, order_id: str | None = None) -> str:
        """An order whose TrainerAssigned went through JetStream; returns its id once the
        REQUESTED schedule is there."""
        order_id = order_id or new_id()
        await self.publish_trainer_assigned(order_id, trainer_id)
        await eventually(lambda: self.find(order_id), what=f"schedule of {order_id} opened")
        return order_id

    async def confirm(
        self, order_id: str, trainer_id: str, start: datetime = TEN, minutes: int = 60
    ) -> pb.Schedule:
        return await self.stub.ConfirmSchedule(
            pb.ConfirmScheduleRequest(
                order_id=order_id, start_time=to_timestamp(start), duration_minutes=minutes
            ),
            metadata=self.metadata("trainer", trainer_id),
        )


def new_id() -> str:
    return str(uuid.uuid4())


def new_trainer() -> str:
    return f"trainer-{uuid.uuid4().hex[:8]}"


def service_keys(keys: KeyFiles) -> KeyFiles:
    """The service key pair beside the users' pair: it signs manager_svc's token only."""
    return ensure_keys(keys.directory / "service")


def settings_for(var_dir: Path, nats_url: str, keys: KeyFiles, port: int) -> ServiceSettings:
    env = Env(
        {
            "PT_VAR_DIR": str(var_dir),
            "PT_TRAINER_PORT": str(port),
            "PT_NATS_URL": nats_url,
            "PT_JWT_PUBLIC_KEY_FILE": str(keys.public_key),
            "PT_JWT_SERVICE_KEY_FILE": str(service_keys(keys).jwks),
            "PT_SHUTDOWN_GRACE_SECONDS": "1",
            "PT_SHUTDOWN_DRAIN_DELAY_SECONDS": "0",
        }
    )
    return ServiceSettings.from_env("trainer", DEFAULT_PORT, env)


@pytest.fixture(scope="module")
async def service(
    tmp_path_factory: pytest.TempPathFactory, keys: KeyFiles
) -> AsyncIterator[TrainerService]:
    var_dir = tmp_path_factory.mktemp("trainer_svc")
    (var_dir / "nats").mkdir()
    nats = NatsServer(var_dir / "nats")
    nats.start()
    port = free_port()
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings_for(var_dir, nats.url, keys, port), stop))
    jetstream = JetStream(nats.url)
    try:
        address = f"127.0.0.1:{port}"
        await eventually(
            lambda: asyncio.to_thread(grpc_serving, address), what="trainer_svc serving"
        )
        await asyncio.wait_for(jetstream.connect(), 15)
        async with grpc.aio.insecure_channel(address) as channel:
            yield TrainerService(
                address, nats.url, keys, pb_grpc.TrainerServiceStub(channel), jetstream
            )
    finally:
        await jetstream.close()
        stop.set()
        await serving
        nats.stop()


async def failure(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code(), raised.value.details() or ""


# -- the TrainerAssigned policy ---------------------------------------------------------------


async def test_trainer_assigned_on_jetstream_opens_a_requested_schedule(
    service: TrainerService,
) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    schedule = await service.find(order_id)
    assert schedule is not None
    assert schedule.status == pb.SCHEDULE_STATUS_REQUESTED
    assert (schedule.trainer_id, schedule.customer_id, schedule.class_name) == (
        trainer,
        "alice",
        "Pilates 1:1",
    )


async def test_a_late_trainer_assigned_does_not_reopen_a_cancelled_schedule(
    service: TrainerService,
) -> None:
    """manager_svc (the service role) cancelled the order before its TrainerAssigned
    reached trainer_svc: the cancelled schedule it records keeps the late event out."""
    order_id = new_id()
    cancelled = await service.stub.CancelSchedule(
        pb.CancelScheduleRequest(order_id=order_id, reason="order cancelled"),
        metadata=service.metadata("service", "manager_svc"),
    )
    assert (cancelled.status, cancelled.trainer_id) == (pb.SCHEDULE_STATUS_CANCELLED, "")
    await service.publish_trainer_assigned(order_id, new_trainer())
    await service.requested(new_trainer())  # handled in order, so the late event was too
    schedule = await service.find(order_id)
    assert schedule is not None
    assert (schedule.status, schedule.cancel_reason) == (
        pb.SCHEDULE_STATUS_CANCELLED,
        "order cancelled",
    )


async def test_a_stale_trainer_assigned_does_not_move_the_schedule(service: TrainerService) -> None:
    order_id, newer, older = new_id(), new_trainer(), new_trainer()
    await service.publish_trainer_assigned(order_id, newer, version=3)
    await service.publish_trainer_assigned(order_id, older, version=2)
    await service.requested(new_trainer())
    schedule = await service.find(order_id)
    assert schedule is not None and schedule.trainer_id == newer


# -- the trainer's flow ---------------------------------------------------------------------


async def test_confirm_then_register_result_then_cancel_is_refused(service: TrainerService) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    confirmed = await service.confirm(order_id, trainer, TEN, 50)
    assert confirmed.status == pb.SCHEDULE_STATUS_CONFIRMED
    assert (from_timestamp(confirmed.start_time), confirmed.duration_minutes) == (TEN, 50)
    done = await service.stub.RegisterClassResult(
        pb.RegisterClassResultRequest(order_id=order_id, result="Better squat depth"),
        metadata=service.metadata("trainer", trainer),
    )
    assert (done.status, done.class_result) == (
        pb.SCHEDULE_STATUS_CLASS_COMPLETED,
        "Better squat depth",
    )
    code, details = await failure(
        service.stub.CancelSchedule(
            pb.CancelScheduleRequest(order_id=order_id), metadata=service.metadata("manager", "m-1")
        )
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "class already held" in details


async def test_a_confirmation_is_published_through_the_outbox(service: TrainerService) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    await service.confirm(order_id, trainer)

    async def published() -> events_pb2.EventEnvelope | None:
        try:
            message = await service.jetstream.js.get_last_msg(
                "PT_EVENTS", "pt.trainer.ScheduleConfirmed"
            )
        except NotFoundError:
            return None
        envelope = events_pb2.EventEnvelope.FromString(message.data)
        return envelope if envelope.order_id == order_id else None

    envelope = await eventually(published, what="ScheduleConfirmed on JetStream")
    assert (envelope.source, envelope.schedule_confirmed.trainer_id) == ("trainer", trainer)
    assert envelope.aggregate_version == 2


async def test_confirm_overlapping_schedule_is_refused(service: TrainerService) -> None:
    trainer = new_trainer()
    first, second = await service.requested(trainer), await service.requested(trainer)
    await service.confirm(first, trainer, TEN, 60)
    code, details = await failure(service.confirm(second, trainer, TEN + timedelta(minutes=45), 60))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert first in details
    assert "2027-03-01 10:00-11:00 UTC" in details
    back_to_back = await service.confirm(second, trainer, TEN + timedelta(minutes=60), 60)
    assert back_to_back.status == pb.SCHEDULE_STATUS_CONFIRMED


async def test_confirming_again_with_the_same_values_returns_the_same_schedule(
    service: TrainerService,
) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    first = await service.confirm(order_id, trainer)
    again = await service.confirm(order_id, trainer)
    assert again == first
    code, details = await failure(service.confirm(order_id, trainer, TEN + timedelta(hours=2)))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "already confirmed" in details


async def test_confirming_a_cancelled_schedule_is_refused(service: TrainerService) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    cancelled = await service.stub.CancelSchedule(
        pb.CancelScheduleRequest(order_id=order_id, reason="trainer ill"),
        metadata=service.metadata("manager", "m-1"),
    )
    again = await service.stub.CancelSchedule(
        pb.CancelScheduleRequest(order_id=order_id, reason="other"),
        metadata=service.metadata("manager", "m-1"),
    )
    assert again == cancelled
    code, details = await failure(service.confirm(order_id, trainer))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "cancelled" in details


async def test_a_class_result_needs_a_confirmed_schedule(service: TrainerService) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    code, details = await failure(
        service.stub.RegisterClassResult(
            pb.RegisterClassResultRequest(order_id=order_id, result="done"),
            metadata=service.metadata("trainer", trainer),
        )
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "needs a confirmed schedule" in details


async def test_list_schedules_shows_a_trainer_their_own_and_a_manager_any(
    service: TrainerService,
) -> None:
    kim, lee = new_trainer(), new_trainer()
    kims = [await service.requested(kim), await service.requested(kim)]
    lees = await service.requested(lee)
    await service.confirm(kims[0], kim)
    own = await service.stub.ListSchedules(
        pb.ListSchedulesRequest(), metadata=service.metadata("trainer", kim)
    )
    assert sorted(s.order_id for s in own.schedules) == sorted(kims)
    confirmed = await service.stub.ListSchedules(
        pb.ListSchedulesRequest(trainer_id=kim, status=pb.SCHEDULE_STATUS_CONFIRMED),
        metadata=service.metadata("manager", "m-1"),
    )
    assert [s.order_id for s in confirmed.schedules] == [kims[0]]
    everyone = await service.stub.ListSchedules(
        pb.ListSchedulesRequest(status=pb.SCHEDULE_STATUS_REQUESTED),
        metadata=service.metadata("manager", "m-1"),
    )
    assert {kims[1], lees} <= {s.order_id for s in everyone.schedules}


async def test_concurrent_calls_each_run_in_their_own_transaction(service: TrainerService) -> None:
    trainer = new_trainer()
    order_ids = [await service.requested(trainer) for _ in range(3)]
    as_trainer = service.metadata("trainer", trainer)
    calls = [
        *(service.confirm(o, trainer, TEN + timedelta(hours=n)) for n, o in enumerate(order_ids)),
        *(
            service.stub.GetSchedule(pb.GetScheduleRequest(order_id=o), metadata=as_trainer)
            for o in order_ids
        ),
        *(
            service.stub.ListSchedules(pb.ListSchedulesRequest(), metadata=as_trainer)
            for _ in range(5)
        ),
    ]
    await asyncio.wait_for(asyncio.gather(*calls), timeout=10)
    listed = await service.stub.ListSchedules(
        pb.ListSchedulesRequest(status=pb.SCHEDULE_STATUS_CONFIRMED), metadata=as_trainer
    )
    assert sorted(s.order_id for s in listed.schedules) == sorted(order_ids)


# -- bad input ----------------------------------------------------------------------------

UNKNOWN = "5b0e9f43-3a40-4a46-9b8e-1b7a4b1c2d3e"
START = to_timestamp(TEN)

BAD_INPUT = [
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(start_time=START, duration_minutes=60),
        "order_id is required",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id="o-1", start_time=START, duration_minutes=60),
        "order_id 'o-1' is not a valid id",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id=UNKNOWN, duration_minutes=60),
        "start_time is required",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id=UNKNOWN, start_time=START),
        "duration_minutes must be between 1 and 480, got 0",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id=UNKNOWN, start_time=START, duration_minutes=481),
        "duration_minutes must be between 1 and 480, got 481",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(
            order_id=UNKNOWN, start_time=Timestamp(seconds=10**13), duration_minutes=60
        ),
        "start_time is invalid",
    ),
    ("RegisterClassResult", pb.RegisterClassResultRequest(result="ok"), "order_id is required"),
    (
        "RegisterClassResult",
        pb.RegisterClassResultRequest(order_id=UNKNOWN, result="  "),
        "result must not be empty",
    ),
    (
        "RegisterClassResult",
        pb.RegisterClassResultRequest(order_id=UNKNOWN, result="x" * 2001),
        "result is too long (2001 characters, at most 2000)",
    ),
    (
        "CancelSchedule",
        pb.CancelScheduleRequest(order_id="nope"),
        "order_id 'nope' is not a valid id",
    ),
    (
        "CancelSchedule",
        pb.CancelScheduleRequest(order_id=UNKNOWN, reason="x" * 501),
        "reason is too long (501 characters, at most 500)",
    ),
    ("GetSchedule", pb.GetScheduleRequest(), "order_id is required"),
    ("GetSchedule", pb.GetScheduleRequest(order_id="12345"), "order_id '12345' is not a valid id"),
    (
        "ListSchedules",
        pb.ListSchedulesRequest(trainer_id="kim lee"),
        "trainer_id 'kim lee' is invalid",
    ),
    ("ListSchedules", pb.ListSchedulesRequest(status=99), "status 99 is not a schedule status"),
]


@pytest.mark.parametrize(("method", "request_message", "message"), BAD_INPUT)
async def test_bad_input_is_an_invalid_argument_saying_what_is_wrong(
    service: TrainerService, method: str, request_message: object, message: str
) -> None:
    role = "manager" if method in ("CancelSchedule", "GetSchedule", "ListSchedules") else "trainer"
    call = getattr(service.stub, method)(request_message, metadata=service.metadata(role, "kim"))
    code, details = await failure(call)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert message in details


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        (
            "ConfirmSchedule",
            pb.ConfirmScheduleRequest(order_id=UNKNOWN, start_time=START, duration_minutes=60),
        ),
        ("RegisterClassResult", pb.RegisterClassResultRequest(order_id=UNKNOWN, result="ok")),
        ("GetSchedule", pb.GetScheduleRequest(order_id=UNKNOWN)),
    ],
)
async def test_an_unknown_schedule_is_not_found(
    service: TrainerService, method: str, request_message: object
) -> None:
    call = getattr(service.stub, method)(
        request_message, metadata=service.metadata("trainer", "kim")
    )
    code, details = await failure(call)
    assert code is grpc.StatusCode.NOT_FOUND
    assert details == f"no schedule for order {UNKNOWN}"


async def test_a_manager_cancelling_an_order_trainer_svc_never_heard_of_is_not_found(
    service: TrainerService,
) -> None:
    """Only manager_svc records a cancellation ahead of its schedule; a manager's call
    (the public API) on an unknown order writes nothing."""
    order_id = new_id()
    code, details = await failure(
        service.stub.CancelSchedule(
            pb.CancelScheduleRequest(order_id=order_id, reason="typo"),
            metadata=service.metadata("manager", "m-1"),
        )
    )
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, f"no schedule for order {order_id}")
    assert await service.find(order_id) is None


# -- authorization --------------------------------------------------------------------------


async def test_another_trainer_may_not_touch_the_schedule(service: TrainerService) -> None:
    owner, other = new_trainer(), new_trainer()
    order_id = await service.requested(owner)
    as_other = service.metadata("trainer", other)
    calls = [
        service.stub.GetSchedule(pb.GetScheduleRequest(order_id=order_id), metadata=as_other),
        service.confirm(order_id, other),
        service.stub.RegisterClassResult(
            pb.RegisterClassResultRequest(order_id=order_id, result="x"), metadata=as_other
        ),
        service.stub.ListSchedules(pb.ListSchedulesRequest(trainer_id=owner), metadata=as_other),
    ]
    for code, details in await asyncio.gather(*map(failure, calls)):
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert f"trainer {other!r} may not act for trainer {owner!r}" in details
    schedule = await service.find(order_id)
    assert schedule is not None and schedule.status == pb.SCHEDULE_STATUS_REQUESTED


async def test_a_manager_may_not_act_as_the_trainer(service: TrainerService) -> None:
    order_id = await service.requested(new_trainer())
    as_manager = service.metadata("manager", "m-1")
    calls = [
        service.stub.ConfirmSchedule(
            pb.ConfirmScheduleRequest(order_id=order_id, start_time=START, duration_minutes=60),
            metadata=as_manager,
        ),
        service.stub.RegisterClassResult(
            pb.RegisterClassResultRequest(order_id=order_id, result="x"), metadata=as_manager
        ),
    ]
    for code, details in await asyncio.gather(*map(failure, calls)):
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert "role 'manager' may not do this (needs trainer)" in details


async def test_only_a_manager_may_cancel_a_schedule_not_even_its_trainer(
    service: TrainerService,
) -> None:
    """A trainer who cannot hold a class asks a manager to re-assign or cancel the order."""
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    code, details = await failure(
        service.stub.CancelSchedule(
            pb.CancelScheduleRequest(order_id=order_id, reason="ill"),
            metadata=service.metadata("trainer", trainer),
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "role 'trainer' may not do this (needs manager or service)" in details
    schedule = await service.find(order_id)
    assert schedule is not None and schedule.status == pb.SCHEDULE_STATUS_REQUESTED


async def test_a_customer_may_not_read_or_cancel_schedules(service: TrainerService) -> None:
    order_id = await service.requested(new_trainer())
    as_customer = service.metadata("customer", "alice")
    calls = [
        service.stub.GetSchedule(pb.GetScheduleRequest(order_id=order_id), metadata=as_customer),
        service.stub.ListSchedules(pb.ListSchedulesRequest(), metadata=as_customer),
        service.stub.CancelSchedule(
            pb.CancelScheduleRequest(order_id=order_id), metadata=as_customer
        ),
    ]
    for code, _ in await asyncio.gather(*map(failure, calls)):
        assert code is grpc.StatusCode.PERMISSION_DENIED


async def test_a_call_without_token_is_unauthenticated(service: TrainerService) -> None:
    code, _ = await failure(service.stub.GetSchedule(pb.GetScheduleRequest(order_id=UNKNOWN)))
    assert code is grpc.StatusCode.UNAUTHENTICATED


# -- the process ----------------------------------------------------------------------------


async def test_python_m_trainer_svc_serves_on_the_configured_port_and_stops_on_sigterm(
    service: TrainerService, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PT_VAR_DIR": str(tmp_path),
        "PT_TRAINER_PORT": str(port),
        "PT_NATS_URL": service.nats_url,
        "PT_JWT_PUBLIC_KEY_FILE": str(service.keys.public_key),
        "PT_SHUTDOWN_DRAIN_DELAY_SECONDS": "0",
    }
    process = ManagedProcess(
        "trainer_svc", [sys.executable, "-m", "trainer_svc"], env, tmp_path / "trainer.log"
    )
    process.start()
    try:
        address = f"127.0.0.1:{port}"
        await asyncio.to_thread(
            wait_for, lambda: grpc_serving(address), 30, 0.1, "trainer_svc subprocess serving"
        )
        async with grpc.aio.insecure_channel(address) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="ptplatform.trainer.v1.TrainerService")
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert (tmp_path / "trainer_svc.db").exists()
    finally:
        process.stop()
    assert '"msg": "stopped"' in process.log_file.read_text()


# -- structured errors (AIP-193) ------------------------------------------------------------


async def refusal(call: Awaitable[object]) -> tuple[str, list[str], dict[str, str]]:
    """(ErrorInfo reason, BadRequest fields, ErrorInfo metadata) of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    refused = refusal_of(raised.value)
    return refused.info.reason, refused.fields, dict(refused.info.metadata)


async def test_an_overlapping_confirmation_names_the_clashing_schedule(
    service: TrainerService,
) -> None:
    trainer = new_trainer()
    first, second = await service.requested(trainer), await service.requested(trainer)
    await service.confirm(first, trainer, TEN, 60)
    clash = service.confirm(second, trainer, TEN + timedelta(minutes=30), 60)
    assert await refusal(clash) == (
        "SCHEDULE_CLASH",
        [],
        {
            "trainer_id": trainer,
            "clashing_order_id": first,
            "clashing_start_time": "2027-03-01T10:00:00Z",
            "clashing_end_time": "2027-03-01T11:00:00Z",
        },
    )


async def test_refusals_of_the_schedule_state_say_which_state(service: TrainerService) -> None:
    trainer = new_trainer()
    order_id = await service.requested(trainer)
    as_trainer = service.metadata("trainer", trainer)
    early = service.stub.RegisterClassResult(
        pb.RegisterClassResultRequest(order_id=order_id, result="ok"), metadata=as_trainer
    )
    assert await refusal(early) == (
        "SCHEDULE_NOT_CONFIRMED",
        [],
        {"order_id": order_id, "schedule_status": "SCHEDULE_STATUS_REQUESTED"},
    )
    await service.confirm(order_id, trainer, TEN, 60)
    moved = service.confirm(order_id, trainer, TEN + timedelta(hours=2), 60)
    assert await refusal(moved) == (
        "SCHEDULE_ALREADY_CONFIRMED",
        [],
        {
            "order_id": order_id,
            "start_time": "2027-03-01T10:00:00Z",
            "end_time": "2027-03-01T11:00:00Z",
        },
    )


FIELD_AT_FAULT = [
    ("ConfirmSchedule", pb.ConfirmScheduleRequest(start_time=START), "order_id", "REQUIRED"),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id="o-1", start_time=START, duration_minutes=60),
        "order_id",
        "INVALID_ID",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id=UNKNOWN, duration_minutes=60),
        "start_time",
        "REQUIRED",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(order_id=UNKNOWN, start_time=START, duration_minutes=481),
        "duration_minutes",
        "OUT_OF_RANGE",
    ),
    (
        "ConfirmSchedule",
        pb.ConfirmScheduleRequest(
            order_id=UNKNOWN, start_time=Timestamp(seconds=10**13), duration_minutes=60
        ),
        "start_time",
        "INVALID_VALUE",
    ),
    (
        "RegisterClassResult",
        pb.RegisterClassResultRequest(order_id=UNKNOWN, result="good\x00"),
        "result",
        "INVALID_CHARACTERS",
    ),
    (
        "RegisterClassResult",
        pb.RegisterClassResultRequest(order_id=UNKNOWN, result="x" * 2001),
        "result",
        "TOO_LONG",
    ),
]


@pytest.mark.parametrize(("method", "request_message", "field", "reason"), FIELD_AT_FAULT)
async def test_bad_input_names_the_field_in_a_bad_request(
    service: TrainerService, method: str, request_message: object, field: str, reason: str
) -> None:
    call = getattr(service.stub, method)(request_message, metadata=service.metadata("trainer", "k"))
    found, fields, _ = await refusal(call)
    assert (found, fields) == (reason, [field])


async def test_a_multi_line_class_result_is_taken_and_an_unknown_schedule_named(
    service: TrainerService,
) -> None:
    request = pb.RegisterClassResultRequest(order_id=UNKNOWN, result="Squats\n\t3 x 10")
    call = service.stub.RegisterClassResult(request, metadata=service.metadata("trainer", "k"))
    assert await refusal(call) == ("SCHEDULE_NOT_FOUND", [], {"order_id": UNKNOWN})
