"""The whole booking flow, many at once, through the gateway as its users call it.

One flow: a customer places an order, the manager assigns a trainer, the trainer
confirms a slot and registers the class result, and the customer's WatchNotifications
stream brings the "class result ready" notification. Each trainer's flows get
consecutive one-hour slots, so no two confirmed classes of a trainer clash. The steps
that wait for an event-driven effect (the assignment opened on OrderPlaced, the schedule
request opened on TrainerAssigned) retry NOT_FOUND and FAILED_PRECONDITION briefly,
within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ptctl.bench.load import percentile
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.manager.v1 import manager_service_pb2_grpc as manager_grpc
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc

T = TypeVar("T")
Token = Callable[[str, str], str]
"""(role, subject) -> a bearer token."""
RETRIED = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION})
STEP_TIMEOUT_S = 30.0


@dataclass
class FlowResult:
    flows: int
    completed: int
    elapsed_s: float
    flows_per_s: float
    p50_ms: float
    p99_ms: float
    retries: int
    """Calls made again because the event-driven effect was not there yet."""
    failures: dict[str, int] = field(default_factory=dict)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class Retries:
    """Calls a step again while what it needs is not there yet: after 20 ms, doubling to
    200 ms (the waiting flows must not become the load), within STEP_TIMEOUT_S."""

    def __init__(self) -> None:
        self.count = 0

    async def until_effect(self, call: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        delay = 0.02
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRIED or time.monotonic() > deadline:
                    raise
            self.count += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)


class Notifications:
    """The customers' WatchNotifications streams; ``arrival(order_id)`` awaits one."""

    def __init__(self, stub: status_grpc.StatusServiceStub) -> None:
        self.stub = stub
        self.arrived: dict[str, asyncio.Future[float]] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def _future(self, order_id: str) -> asyncio.Future[float]:
        return self.arrived.setdefault(order_id, asyncio.get_running_loop().create_future())

    async def _watch(self, customer_id: str, token: str) -> None:
        request = status.WatchNotificationsRequest(customer_id=customer_id)
        async for note in self.stub.WatchNotifications(request, metadata=bearer(token)):
            if note.kind == status.NOTIFICATION_KIND_CLASS_RESULT_READY:
                future = self._future(note.order_id)
                if not future.done():
                    future.set_result(time.monotonic())

    def watch(self, customer_id: str, token: str) -> None:
        self.tasks.append(asyncio.create_task(self._watch(customer_id, token)))

    async def arrival(self, order_id: str) -> float:
        return await asyncio.wait_for(self._future(order_id), STEP_TIMEOUT_S)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await task


async def whole_flows(
    gateway: str,
    token: Token,
    total: int,
    in_flight: int = 32,
    trainers: int = 8,
    customers: int = 8,
    progress: Callable[[], None] = lambda: None,
) -> FlowResult:
    token = functools.cache(token)  # minting signs with RSA: once per user, as a client would
    first_slot = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    async with grpc.aio.insecure_channel(gateway) as channel:
        orders = order_grpc.OrderServiceStub(channel)
        managers = manager_grpc.ManagerServiceStub(channel)
        schedules = trainer_grpc.TrainerServiceStub(channel)
        as_manager = bearer(token("manager", "bench-manager"))
        coaches = [
            (
                await managers.RegisterTrainer(
                    manager.RegisterTrainerRequest(name=f"Bench Trainer {n}"), metadata=as_manager
                )
            ).trainer_id
            for n in range(trainers)
        ]
        people = [f"bench-flow-customer-{n}" for n in range(customers)]
        notifications = Notifications(status_grpc.StatusServiceStub(channel))
        for person in people:
            notifications.watch(person, token("customer", person))
        gate = asyncio.Semaphore(in_flight)
        retries = Retries()
        durations: list[float] = []
        failures: dict[str, int] = {}

        async def flow(number: int) -> None:
            coach = coaches[number % trainers]
            as_coach = bearer(token("trainer", coach))
            as_customer = bearer(token("customer", people[number % customers]))
            slot = first_slot + timedelta(hours=number // trainers)
            started = time.monotonic()
            placed = await orders.PlaceOrder(
                order.PlaceOrderRequest(
                    customer_name="Bench Flow",
                    class_name=f"Flow class {number}",
                    preferred_start=timestamp(slot),
                ),
                metadata=as_customer,
            )
            oid = placed.order_id
            await retries.until_effect(
                lambda: managers.AssignTrainer(
                    manager.AssignTrainerRequest(order_id=oid, trainer_id=coach),
                    metadata=as_manager,
                )
            )
            await retries.until_effect(
                lambda: schedules.ConfirmSchedule(
                    trainer.ConfirmScheduleRequest(
                        order_id=oid, start_time=timestamp(slot), duration_minutes=60
                    ),
                    metadata=as_coach,
                )
            )
            await schedules.RegisterClassResult(
                trainer.RegisterClassResultRequest(order_id=oid, result="Bench result"),
                metadata=as_coach,
            )
            durations.append(await notifications.arrival(oid) - started)

        async def bounded(number: int) -> None:
            async with gate:
                try:
                    await flow(number)
                except grpc.aio.AioRpcError as error:
                    failures[error.code().name] = failures.get(error.code().name, 0) + 1
                except TimeoutError:
                    failures["NOTIFICATION_TIMEOUT"] = failures.get("NOTIFICATION_TIMEOUT", 0) + 1
                progress()

        started = time.monotonic()
        try:
            await asyncio.gather(*(bounded(n) for n in range(total)))
        finally:
            await notifications.close()
        elapsed = time.monotonic() - started
    return FlowResult(
        flows=total,
        completed=len(durations),
        elapsed_s=elapsed,
        flows_per_s=len(durations) / elapsed,
        p50_ms=percentile(durations, 0.50) * 1000,
        p99_ms=percentile(durations, 0.99) * 1000,
        retries=retries.count,
        failures=failures,
    )
