"""Composition root of manager_svc: read settings, build adapters, serve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manager_svc.adapters import sql
from manager_svc.adapters.grpc_api import ManagerServiceAdapter
from manager_svc.adapters.trainer_client import ServiceToken, TrainerCallSettings, TrainerClient
from manager_svc.application.policies import POLICIES, TRANSIENT_ERRORS
from ptkit.config import ConfigError, Env, exit_on_config_error
from ptkit.logs import configure_logging
from ptkit.messaging import bind
from ptkit.runtime import ServiceRuntime, ServiceSettings, run
from ptkit.server import registration
from ptkit.tokens import KeyFiles
from ptplatform import public_api
from ptplatform.manager.v1 import manager_service_pb2 as pb
from ptplatform.manager.v1 import manager_service_pb2_grpc as pb_grpc

DEFAULT_PORT = 50052
DEFAULT_TRAINER_ADDRESS = "127.0.0.1:8081"


@dataclass(frozen=True)
class ManagerSettings:
    service: ServiceSettings
    auto_assign: bool
    trainer: TrainerCallSettings
    signing_keys: KeyFiles

    @classmethod
    def from_env(cls, env: Env | None = None) -> ManagerSettings:
        env = env or Env()
        service = ServiceSettings.from_env("manager", DEFAULT_PORT, env)
        signing_key = env.path(
            "PT_SIGNING_KEY_FILE", env.path("PT_VAR_DIR", Path("var")) / "jwt" / "private.pem"
        )
        if signing_key.name != "private.pem" or not signing_key.is_file():
            raise ConfigError(
                f"PT_SIGNING_KEY_FILE={str(signing_key)!r} must name an existing private.pem "
                "(run 'ptctl token' once to create development keys)"
            )
        return cls(
            service=service,
            auto_assign=env.bool("PT_MANAGER_AUTO_ASSIGN", False),
            trainer=TrainerCallSettings(
                address=env.str("PT_TRAINER_ADDRESS", DEFAULT_TRAINER_ADDRESS),
                call_timeout_seconds=env.float(
                    "PT_TRAINER_CALL_TIMEOUT_SECONDS", 2.0, minimum=0.05
                ),
                attempts=env.int("PT_TRAINER_CALL_ATTEMPTS", 3, minimum=1, maximum=20),
                max_seconds=env.float("PT_TRAINER_CALL_MAX_SECONDS", 5.0, minimum=0.05),
                tls=service.tls,
            ),
            signing_keys=KeyFiles(signing_key.parent),
        )


async def serve(settings: ManagerSettings) -> None:
    runtime = ServiceRuntime(settings.service, sql.metadata, sql.messaging, source="manager")
    new_uow = runtime.unit_of_work_factory(sql.SqlManagerUnitOfWork)
    token = ServiceToken(
        settings.signing_keys,
        issuer=settings.service.jwt.issuer,
        audience=settings.service.jwt.audience,
    )
    trainer_client = TrainerClient(settings.trainer, token, runtime.client_interceptors())
    runtime.consume(
        bind(POLICIES, schedules=trainer_client, auto_assign=settings.auto_assign),
        new_uow,
        TRANSIENT_ERRORS,
    )
    try:
        await runtime.serve(
            [
                registration(
                    pb.DESCRIPTOR.services_by_name["ManagerService"],
                    pb_grpc.add_ManagerServiceServicer_to_server,
                    ManagerServiceAdapter(new_uow, runtime.page_tokens),
                )
            ],
            described=public_api.SERVICES,
        )
    finally:
        await trainer_client.close()


def main() -> None:
    with exit_on_config_error():
        settings = ManagerSettings.from_env()
    configure_logging(settings.service.name, settings.service.log_level)
    run(serve(settings), settings.service.event_loop)
