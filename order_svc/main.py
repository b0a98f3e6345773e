"""Composition root of order_svc: read settings, build adapters, serve."""

from __future__ import annotations

from order_svc.adapters import sql
from order_svc.adapters.grpc_api import OrderServiceAdapter
from order_svc.application.policies import POLICIES, TRANSIENT_ERRORS
from ptkit.config import exit_on_config_error
from ptkit.logs import configure_logging
from ptkit.runtime import ServiceRuntime, ServiceSettings, run
from ptkit.server import registration
from ptplatform import public_api
from ptplatform.order.v1 import order_service_pb2 as pb
from ptplatform.order.v1 import order_service_pb2_grpc as pb_grpc

DEFAULT_PORT = 50051


async def serve(settings: ServiceSettings) -> None:
    runtime = ServiceRuntime(settings, sql.metadata, sql.messaging, source="order")
    new_uow = runtime.unit_of_work_factory(sql.SqlOrderUnitOfWork)
    runtime.consume(POLICIES, new_uow, TRANSIENT_ERRORS)
    await runtime.serve(
        [
            registration(
                pb.DESCRIPTOR.services_by_name["OrderService"],
                pb_grpc.add_OrderServiceServicer_to_server,
                OrderServiceAdapter(new_uow, runtime.page_tokens),
            )
        ],
        described=public_api.SERVICES,
    )


def main() -> None:
    with exit_on_config_error():
        settings = ServiceSettings.from_env("order", DEFAULT_PORT)
    configure_logging(settings.name, settings.log_level)
    run(serve(settings), settings.event_loop)
