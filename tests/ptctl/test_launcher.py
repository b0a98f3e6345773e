"""The databases ``ptctl run`` gives its services: the user's URL when set, else SQLite
under the var directory; test platforms never follow the developer's shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptctl.launcher import Platform, PlatformConfig
from ptkit.config import ConfigError, Env

POSTGRES = "postgresql+psycopg://pt:secret@db.example:5432/orders"


def database_url_of(platform: Platform, context: str) -> str:
    return platform.services[context][0].env[f"PT_{context.upper()}_DATABASE_URL"]


def test_make_run_passes_the_configured_database_url_to_its_service(tmp_path: Path) -> None:
    config = PlatformConfig.defaults(tmp_path, Env({"PT_ORDER_DATABASE_URL": POSTGRES}))
    assert config.database_urls == {"order": [POSTGRES]}
    platform = Platform(config)
    assert database_url_of(platform, "order") == POSTGRES
    assert database_url_of(platform, "trainer") == f"sqlite:///{tmp_path.resolve()}/trainer_svc.db"


def test_make_run_refuses_a_database_url_that_is_neither_sqlite_nor_postgresql(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="PT_STATUS_DATABASE_URL='mysql://x' is invalid"):
        PlatformConfig.defaults(tmp_path, Env({"PT_STATUS_DATABASE_URL": "mysql://x"}))


def test_a_test_platform_ignores_database_urls_of_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PT_ORDER_DATABASE_URL", POSTGRES)
    platform = Platform(PlatformConfig.ephemeral(tmp_path, contexts=["order"]))
    assert database_url_of(platform, "order") == f"sqlite:///{tmp_path.resolve()}/order_svc.db"
