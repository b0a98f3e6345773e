"""``ptctl keys``: the users' and the service key pairs, apart, private from the first byte."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ptctl.cli import main
from ptctl.keys import ensure_keys
from ptkit.auth import Caller, JwtSettings, Role, TokenVerifier, Unauthenticated
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles, mint_token


def kids(jwks: Path) -> set[str]:
    return {key["kid"] for key in json.loads(jwks.read_text())["keys"]}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_makes_two_pairs_that_never_stand_in_for_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "secrets" / "jwt"
    assert main(["keys", "--dir", str(out)]) == 0
    printed = capsys.readouterr().out
    users, service = KeyFiles(out), KeyFiles(out / "service")
    assert kids(out / "services-jwks.json") == kids(service.jwks)
    assert kids(users.jwks).isdisjoint(kids(service.jwks))
    assert f"{service.private_key}  service signing key" in printed
    verifier = TokenVerifier(
        JwtSettings(users.jwks, DEV_ISSUER, DEV_AUDIENCE, out / "services-jwks.json")
    )
    manager_svc = mint_token(service, Role.SERVICE, "manager_svc")
    assert verifier.caller_from(f"Bearer {manager_svc}") == Caller("manager_svc", Role.SERVICE)
    with pytest.raises(Unauthenticated):
        verifier.caller_from(f"Bearer {mint_token(service, Role.MANAGER, 'm-1')}")


def test_keys_are_private_and_made_once(tmp_path: Path) -> None:
    out = tmp_path / "jwt"
    assert main(["keys", "--dir", str(out)]) == 0
    first = (out / "service" / "private.pem").read_bytes()
    assert main(["keys", "--dir", str(out)]) == 0
    assert (out / "service" / "private.pem").read_bytes() == first
    for private in (out / "private.pem", out / "service" / "private.pem"):
        assert mode(private) == 0o600
    assert mode(out) == mode(out / "service") == 0o700


def test_keys_are_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        files = ensure_keys(tmp_path / "jwt")
    finally:
        os.umask(previous)
    assert mode(files.private_key) == 0o600
    assert mode(files.directory) == 0o700
