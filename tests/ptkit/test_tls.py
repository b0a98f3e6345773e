"""PostgreSQL URLs with libpq's TLS parameters (ptkit.tls.postgres_ssl), against a real
PostgreSQL: ``sslmode=verify-full`` demands TLS and never falls back to plaintext."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ptctl.tls import LocalCa, ensure_tls
from ptkit.config import ConfigError
from ptkit.sql import create_engine
from ptkit.tls import postgres_ssl


@pytest.fixture
def ca(tmp_path: Path) -> LocalCa:
    return ensure_tls(tmp_path / "tls", ())


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def test_verify_full_checks_the_certificate_and_the_host_name(ca: LocalCa) -> None:
    url = make_url(f"postgresql://u@db.internal/x?sslmode=verify-full&sslrootcert={ca.ca_file}")
    bare, connect_args = postgres_ssl(url)
    assert dict(bare.query) == {}
    context = connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_mistyped_mode_or_a_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sslmode='verify_full' is invalid"):
        postgres_ssl(make_url("postgresql://u@db/x?sslmode=verify_full"))
    with pytest.raises(ConfigError, match="sslrootcert="):
        postgres_ssl(
            make_url(f"postgresql://u@db/x?sslmode=verify-full&sslrootcert={tmp_path / 'no.pem'}")
        )


async def test_verify_full_refuses_a_server_without_tls(postgres_url: str, ca: LocalCa) -> None:
    """The test server speaks no TLS: the connection fails instead of going on in plaintext."""
    engine = create_engine(
        with_query(postgres_url, f"sslmode=verify-full&sslrootcert={ca.ca_file}")
    )
    try:
        with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_sslmode_disable_still_connects_in_plaintext(postgres_url: str) -> None:
    engine = create_engine(with_query(postgres_url, "sslmode=disable"))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
