"""The authenticated bus with the real services: nobody joins without credentials, and an
event forged with one service's credentials changes no order, no assignment and no view;
the consumers that saw it count it in ``pt_events_rejected_total``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
import pytest
from nats.aio.client import Client

from ptctl.launcher import Platform
from ptkit.messaging import NatsIdentity
from ptkit.provenance import SUBJECT_MISMATCH
from ptplatform.events.v1 import events_pb2
from ptplatform.manager.v1 import manager_service_pb2 as manager
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.status.v1 import status_service_pb2 as status
from tests.e2e.test_booking_flow import Studio, view_where
from tests.e2e.test_booking_flow import studio as studio
from tests.helpers import metric, wait_for
from tests.ptkit.test_consumer import schedule_confirmed

pytestmark = pytest.mark.timeout(90)

STREAM = "PT_EVENTS"


@asynccontextmanager
async def as_service(platform: Platform, context: str, errors: list[str]) -> AsyncIterator[Client]:
    """A client holding ``<context>_svc``'s credentials, as a compromised service would."""

    async def record(error: Exception) -> None:
        errors.append(str(error))

    user = f"{context}_svc"
    identity = NatsIdentity(seed_file=platform.nats_seeds[user])
    nc = await nats.connect(
        platform.nats_url, allow_reconnect=False, error_cb=record, **identity.connect_options(user)
    )
    try:
        yield nc
    finally:
        await nc.close()


def forged_confirmation(order_id: str) -> events_pb2.EventEnvelope:
    """A ScheduleConfirmed that claims to come from trainer_svc."""
    envelope = schedule_confirmed(order_id)
    envelope.schedule_confirmed.trainer_id = "trainer-forged"
    return envelope


async def stored_on(platform: Platform, subject: str) -> int:
    nc = await nats.connect(platform.nats_url, **platform.nats_admin.connect_options(""))
    try:
        info = await nc.jetstream().stream_info(STREAM, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)
    finally:
        await nc.close()


def placed_and_awaiting_trainer(studio: Studio) -> tuple[str, status.OrderStatus]:
    placed = studio.orders.PlaceOrder(
        order.PlaceOrderRequest(
            customer_name="Alice Kim", class_name="Pilates 1:1", request_id=str(uuid.uuid4())
        ),
        metadata=studio.customer,
    ).order_id
    settled = view_where(
        studio,
        placed,
        order_status=order.ORDER_STATUS_PLACED,
        assignment_status=manager.ASSIGNMENT_STATUS_AWAITING_TRAINER,
    )
    return placed, settled


def unchanged(studio: Studio, order_id: str, view: status.OrderStatus) -> None:
    got = studio.orders.GetOrder(order.GetOrderRequest(order_id=order_id), metadata=studio.customer)
    assert got.status == order.ORDER_STATUS_PLACED
    assignment = studio.managers.GetAssignment(
        manager.GetAssignmentRequest(order_id=order_id), metadata=studio.manager
    )
    assert assignment.status == manager.ASSIGNMENT_STATUS_AWAITING_TRAINER
    now = studio.status.GetOrderStatus(
        status.GetOrderStatusRequest(order_id=order_id), metadata=studio.customer
    )
    assert now == view


def test_a_client_without_credentials_is_refused(platform: Platform) -> None:
    async def anonymous() -> None:
        await nats.connect(platform.nats_url, allow_reconnect=False, max_reconnect_attempts=0)

    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(anonymous())


def test_order_credentials_cannot_publish_a_schedule_confirmation(
    platform: Platform, studio: Studio
) -> None:
    order_id, view = placed_and_awaiting_trainer(studio)
    subject = "pt.trainer.ScheduleConfirmed"
    before = asyncio.run(stored_on(platform, subject))
    errors: list[str] = []

    async def forge() -> None:
        async with as_service(platform, "order", errors) as order_svc:
            forged = forged_confirmation(order_id)
            with pytest.raises(nats.errors.TimeoutError):
                await order_svc.jetstream().publish(
                    subject,
                    forged.SerializeToString(),
                    headers={"Nats-Msg-Id": forged.event_id},
                    timeout=1,
                )

    asyncio.run(forge())

    assert any(f'publish to "{subject.lower()}"' in e.lower() for e in errors), errors
    assert asyncio.run(stored_on(platform, subject)) == before
    unchanged(studio, order_id, view)


def test_a_forged_event_on_the_senders_own_subject_is_rejected_and_counted(
    platform: Platform, studio: Studio
) -> None:
    """order_svc's credentials may publish on pt.order.*: an envelope that calls itself
    trainer_svc's ScheduleConfirmed there reaches status_svc and manager_svc, which
    refuse it instead of confirming the order's view and assignment."""
    order_id, view = placed_and_awaiting_trainer(studio)
    readers = {"status": "status_svc", "manager": "manager_svc"}

    def rejected() -> dict[str, float]:
        return {
            context: metric(
                platform,
                context,
                "pt_events_rejected_total",
                consumer=durable,
                reason=SUBJECT_MISMATCH,
            )
            for context, durable in readers.items()
        }

    before = rejected()
    errors: list[str] = []

    async def forge() -> None:
        async with as_service(platform, "order", errors) as order_svc:
            forged = forged_confirmation(order_id)
            await order_svc.jetstream().publish(
                "pt.order.OrderPlaced",
                forged.SerializeToString(),
                headers={"Nats-Msg-Id": forged.event_id},
            )

    asyncio.run(forge())

    wait_for(
        lambda: all(rejected()[c] > before[c] for c in readers),
        timeout=20,
        what="status_svc and manager_svc counted the forged event",
    )
    assert errors == []
    unchanged(studio, order_id, view)
