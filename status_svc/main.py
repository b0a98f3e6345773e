"""Composition root of status_svc: read settings, build adapters, serve."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ptkit.config import Env, exit_on_config_error
from ptkit.logs import configure_logging
from ptkit.messaging import bind
from ptkit.runtime import ServiceRuntime, ServiceSettings, run
from ptkit.server import registration, stop_on_signals
from ptplatform import public_api
from ptplatform.status.v1 import status_service_pb2 as pb
from ptplatform.status.v1 import status_service_pb2_grpc as pb_grpc
from status_svc.adapters import sql
from status_svc.adapters.grpc_api import StatusServiceAdapter
from status_svc.application.bell import NotificationBell
from status_svc.application.policies import POLICIES, TRANSIENT_ERRORS
from status_svc.application.watch import WatchLimits

DEFAULT_PORT = 50054


@dataclass(frozen=True)
class StatusSettings:
    service: ServiceSettings
    watch_limits: WatchLimits

    @classmethod
    def from_env(cls, env: Env | None = None) -> StatusSettings:
        env = env or Env()
        defaults = WatchLimits()
        return cls(
            service=ServiceSettings.from_env("status", DEFAULT_PORT, env),
            watch_limits=WatchLimits(
                per_caller=env.int(
                    "PT_STATUS_MAX_WATCHES_PER_CALLER", defaults.per_caller, minimum=1
                ),
                total=env.int("PT_STATUS_MAX_WATCHES", defaults.total, minimum=1),
            ),
        )


async def serve(
    settings: ServiceSettings,
    stop: asyncio.Event | None = None,
    watch_limits: WatchLimits | None = None,
) -> None:
    """Serve until ``stop`` is set (by default: until SIGTERM or SIGINT)."""
    stop = stop or stop_on_signals()
    runtime = ServiceRuntime(settings, sql.metadata, sql.messaging, source=None)
    bell = NotificationBell()
    new_uow = runtime.unit_of_work_factory(sql.SqlStatusUnitOfWork)
    runtime.consume(bind(POLICIES, bell=bell), new_uow, TRANSIENT_ERRORS)
    await runtime.serve(
        [
            registration(
                pb.DESCRIPTOR.services_by_name["StatusService"],
                pb_grpc.add_StatusServiceServicer_to_server,
                StatusServiceAdapter(
                    new_uow, runtime.page_tokens, bell, closing=stop, watch_limits=watch_limits
                ),
            )
        ],
        stop,
        described=public_api.SERVICES,
    )


def main() -> None:
    with exit_on_config_error():
        settings = StatusSettings.from_env()
    configure_logging(settings.service.name, settings.service.log_level)
    run(serve(settings.service, watch_limits=settings.watch_limits), settings.service.event_loop)
