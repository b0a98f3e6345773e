"""Composition root of trainer_svc: read settings, build adapters, serve."""

from __future__ import annotations

import asyncio

from ptkit.config import exit_on_config_error
from ptkit.logs import configure_logging
from ptkit.runtime import ServiceRuntime, ServiceSettings, run
from ptkit.server import registration
from ptplatform import public_api
from ptplatform.trainer.v1 import trainer_service_pb2 as pb
from ptplatform.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from trainer_svc.adapters import sql
from trainer_svc.adapters.grpc_api import TrainerServiceAdapter
from trainer_svc.application.policies import POLICIES, TRANSIENT_ERRORS

DEFAULT_PORT = 50053


async def serve(settings: ServiceSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (default: until SIGTERM or SIGINT)."""
    runtime = ServiceRuntime(settings, sql.metadata, sql.messaging, source="trainer")
    new_uow = runtime.unit_of_work_factory(sql.SqlTrainerUnitOfWork)
    runtime.consume(POLICIES, new_uow, TRANSIENT_ERRORS)
    await runtime.serve(
        [
            registration(
                pb.DESCRIPTOR.services_by_name["TrainerService"],
                pb_grpc.add_TrainerServiceServicer_to_server,
                TrainerServiceAdapter(new_uow, runtime.page_tokens),
            )
        ],
        stop,
        described=public_api.SERVICES,
    )


def main() -> None:
    with exit_on_config_error():
        settings = ServiceSettings.from_env("trainer", DEFAULT_PORT)
    configure_logging(settings.name, settings.log_level)
    run(serve(settings), settings.event_loop)
