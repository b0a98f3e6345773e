"""Scale-out: two replicas of order_svc and of status_svc, each pair sharing its own
PostgreSQL database and its durable consumer, behind the one gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ptctl.launcher import Platform, PlatformConfig
from ptctl.pages import every_page
from ptplatform.order.v1 import order_service_pb2 as order
from ptplatform.order.v1 import order_service_pb2_grpc as order_grpc
from ptplatform.status.v1 import status_service_pb2 as status
from ptplatform.status.v1 import status_service_pb2_grpc as status_grpc
from tests.helpers import bearer, metric, wait_for

ORDERS = 30
PLACE_ORDER = {
    "grpc_type": "unary",
    "grpc_service": "ptplatform.order.v1.OrderService",
    "grpc_method": "PlaceOrder",
}


@pytest.fixture
def replicated(tmp_path: Path, postgres_databases: Callable[[], str]) -> Iterator[Platform]:
    order_db, status_db = postgres_databases(), postgres_databases()
    config = PlatformConfig.ephemeral(
        tmp_path,
        contexts=["order", "status"],
        replicas={"order": 2, "status": 2},
        database_urls={"order": [order_db, order_db], "status": [status_db, status_db]},
    )
    with Platform(config) as platform:
        yield platform


def test_replicas_share_the_load_and_every_event_takes_effect_once(replicated: Platform) -> None:
    auth = bearer(replicated.token("customer", "scale-customer"))
    with grpc.insecure_channel(replicated.gateway_address) as channel:
        orders = order_grpc.OrderServiceStub(channel)
        views = status_grpc.StatusServiceStub(channel)
        placed = {
            orders.PlaceOrder(
                order.PlaceOrderRequest(customer_name="Sam", class_name=f"Class {n}"), metadata=auth
            ).order_id
            for n in range(ORDERS)
        }

        def all_views() -> set[str]:
            found = every_page(
                lambda page: views.ListOrderStatuses(page, metadata=auth),
                status.ListOrderStatusesRequest(),
                "statuses",
            )
            ids = {s.order_id for s in found}
            return ids if ids == placed else set()

        wait_for(all_views, timeout=30, what="a status view of every order")

    served = [
        metric(
            replicated,
            "order",
            "grpc_server_handled_total",
            r,
            **PLACE_ORDER,
            grpc_code="OK",
        )
        for r in (0, 1)
    ]
    assert sum(served) == ORDERS
    assert all(count > 0 for count in served), f"gateway did not balance PlaceOrder: {served}"

    handled = [
        metric(
            replicated,
            "status",
            "pt_events_handled_total",
            r,
            consumer="status_svc",
            event_type="OrderPlaced",
        )
        for r in (0, 1)
    ]
    assert sum(handled) == ORDERS, f"each OrderPlaced takes effect exactly once: {handled}"
