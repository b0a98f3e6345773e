"""``ptctl demo`` finds the gateway where ``ptctl run`` put it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptctl.cli import default_gateway, main
from ptctl.launcher import free_port
from ptkit.config import Env


@pytest.mark.parametrize(
    ("environ", "gateway"),
    [
        ({}, "127.0.0.1:8080"),
        ({"PT_GATEWAY_PORT": "18080"}, "127.0.0.1:18080"),
        ({"PT_GATEWAY_HOST": "10.1.2.3", "PT_GATEWAY_PORT": "80"}, "10.1.2.3:80"),
        ({"PT_GATEWAY_HOST": "0.0.0.0"}, "127.0.0.1:8080"),
        ({"PT_GATEWAY_HOST": "::1"}, "[::1]:8080"),
    ],
)
def test_the_default_gateway_follows_the_gateway_variables(
    environ: dict[str, str], gateway: str
) -> None:
    assert default_gateway(Env(environ)) == gateway


def test_demo_without_gateway_option_calls_the_configured_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("PT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PT_GATEWAY_PORT", str(port))
    assert main(["demo"]) == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().out
    assert (tmp_path / "jwt" / "private.pem").is_file()


def test_demo_with_a_bad_gateway_port_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PT_GATEWAY_PORT", "eighty")
    with pytest.raises(SystemExit) as exit_:
        main(["demo"])
    assert exit_.value.code == 2
    assert "PT_GATEWAY_PORT='eighty' is invalid" in capsys.readouterr().err
