"""``ptctl token``: development tokens the platform's services verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptctl.cli import main
from ptkit.auth import Caller, JwtSettings, Role, TokenVerifier, Unauthenticated
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles


def mint(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", *args]) == 0
    return capsys.readouterr().out.strip()


def verifier(
    var_dir: Path, issuer: str = DEV_ISSUER, audience: str = DEV_AUDIENCE
) -> TokenVerifier:
    return TokenVerifier(JwtSettings(KeyFiles(var_dir / "jwt").public_key, issuer, audience))


def test_token_creates_keys_on_first_use_and_signs_a_verifiable_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PT_VAR_DIR", str(tmp_path))
    token = mint(capsys, "--role", "trainer", "--subject", "t-1")
    assert (tmp_path / "jwt" / "private.pem").is_file()
    assert verifier(tmp_path).caller_from(f"Bearer {token}") == Caller("t-1", Role.TRAINER)


def test_token_with_a_negative_ttl_is_already_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PT_VAR_DIR", str(tmp_path))
    token = mint(capsys, "--role", "customer", "--subject", "alice", "--ttl", "-60")
    with pytest.raises(Unauthenticated, match="expired"):
        verifier(tmp_path).caller_from(f"Bearer {token}")


def test_token_follows_the_configured_issuer_and_audience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PT_JWT_ISSUER", "https://auth.staging.example")
    monkeypatch.setenv("PT_JWT_AUDIENCE", "staging")
    token = mint(capsys, "--role", "manager", "--subject", "m-1")
    staging = verifier(tmp_path, "https://auth.staging.example", "staging")
    assert staging.caller_from(f"Bearer {token}") == Caller("m-1", Role.MANAGER)
    with pytest.raises(Unauthenticated):
        verifier(tmp_path).caller_from(f"Bearer {token}")


def test_token_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["token", "--role", "admin", "--subject", "root"])
    assert "invalid choice" in capsys.readouterr().err
