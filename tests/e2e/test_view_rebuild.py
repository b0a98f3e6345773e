"""``ptctl rebuild-views`` on a running platform: the views are rebuilt from the event
archive while status_svc keeps serving them, and come out as the live consumer made
them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import nats
import pytest

from ptctl import cli
from ptctl.launcher import Platform
from ptctl.rebuild import JetStreamHistory
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.trainer.v1 import trainer_service_pb2 as trainer
from status_svc.adapters.rebuild_sql import rebuild_store
from status_svc.application.rebuild import RecordedEvent, rebuild_views
from tests.e2e.test_booking_flow import Studio, book_and_confirm, view_where
from tests.e2e.test_booking_flow import studio as studio

pytestmark = pytest.mark.timeout(60)

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


def status_database(platform: Platform) -> str:
    urls = platform.config.database_urls.get("status")
    return urls[0] if urls else f"sqlite:///{platform.var_dir / 'status_svc.db'}"


def read_side(studio: Studio, order_ids: list[str]) -> tuple[list[str], list[str]]:
    """What the customer reads: their orders' views and their notifications."""
    views = [
        studio.status.GetOrderStatus(
            status.GetOrderStatusRequest(order_id=order_id), metadata=studio.customer
        ).SerializeToString(deterministic=True)
        for order_id in order_ids
    ]
    notifications = studio.status.ListNotifications(
        status.ListNotificationsRequest(customer_id=studio.customer_id), metadata=studio.customer
    ).notifications
    return [v.hex() for v in views], [
        n.SerializeToString(deterministic=True).hex() for n in notifications
    ]


class ServedMidway(JetStreamHistory):
    """The platform's history; halfway through the archive, a customer reads a view."""

    def __init__(self, history: JetStreamHistory, read: Callable[[], status.OrderStatus]) -> None:
        super().__init__(history.js, history.stream, history.archive)
        self.read = read
        self.served: list[status.OrderStatus] = []

    async def archived(self) -> AsyncIterator[RecordedEvent]:  # type: ignore[override]
        async for recorded in super().archived():
            yield recorded
            if not self.served:
                self.served.append(await asyncio.to_thread(self.read))


def test_views_rebuilt_while_serving_equal_the_live_ones(
    platform: Platform, studio: Studio
) -> None:
    held, _trainer, coach_auth = book_and_confirm(studio, platform, START)
    studio.trainers.RegisterClassResult(
        trainer.RegisterClassResultRequest(order_id=held, result="Great form"), metadata=coach_auth
    )
    view_where(studio, held, order_status=order.ORDER_STATUS_COMPLETED, class_result="Great form")
    before = read_side(studio, [held])

    def read_held() -> status.OrderStatus:
        return studio.status.GetOrderStatus(
            status.GetOrderStatusRequest(order_id=held), metadata=studio.customer
        )

    async def rebuild() -> ServedMidway:
        connection = await nats.connect(
            platform.nats_url, **platform.nats_admin.connect_options("")
        )
        history = ServedMidway(JetStreamHistory(connection.jetstream()), read_held)
        store = rebuild_store(status_database(platform))
        try:
            await rebuild_views(history, store)
        finally:
            await store.close()
            await connection.close()
        return history

    history = asyncio.run(rebuild())

    assert history.served[0].order_status == order.ORDER_STATUS_COMPLETED
    assert read_side(studio, [held]) == before


def test_rebuild_views_command_prints_a_summary(
    platform: Platform,
    studio: Studio,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PT_NATS_ADMIN_SEED_FILE", str(platform.nats_admin.seed_file))
    placed = studio.orders.PlaceOrder(
        order.PlaceOrderRequest(customer_name="Alice Kim", class_name="Pilates 1:1"),
        metadata=studio.customer,
    ).order_id
    view_where(studio, placed, order_status=order.ORDER_STATUS_PLACED)
    before = read_side(studio, [placed])

    code = cli.main(
        [
            "rebuild-views",
            "--database-url",
            status_database(platform),
            "--nats-url",
            platform.nats_url,
        ]
    )

    assert code == 0
    assert "events replayed" in capsys.readouterr().out
    assert read_side(studio, [placed]) == before
    # status_svc goes on on the swapped-in views
    studio.orders.CancelOrder(
        order.CancelOrderRequest(order_id=placed, reason="ill"), metadata=studio.customer
    )
    view_where(studio, placed, order_status=order.ORDER_STATUS_CANCELLED)
