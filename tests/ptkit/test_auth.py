"""Token verification against a PEM key or a JWKS of several keys."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest

from ptctl.keys import ensure_keys, merge_jwks
from ptkit.auth import (
    Caller,
    JwtSettings,
    Role,
    SharedTrustError,
    TokenVerifier,
    Unauthenticated,
)
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER, KeyFiles, mint_token


@pytest.fixture
def provider(tmp_path: Path) -> KeyFiles:
    return ensure_keys(tmp_path / "provider")


@pytest.fixture
def service(tmp_path: Path) -> KeyFiles:
    return ensure_keys(tmp_path / "service")


def verifier(key_file: Path) -> TokenVerifier:
    return TokenVerifier(JwtSettings(key_file, DEV_ISSUER, DEV_AUDIENCE))


def bearer(keys: KeyFiles, subject: str) -> str:
    return f"Bearer {mint_token(keys, Role.MANAGER, subject)}"


def test_a_jwks_of_two_keys_trusts_tokens_of_both(
    tmp_path: Path, provider: KeyFiles, service: KeyFiles
) -> None:
    trusted = verifier(merge_jwks([provider.jwks, service.jwks], tmp_path / "trusted.json"))
    assert trusted.caller_from(bearer(provider, "kim")) == Caller("kim", Role.MANAGER)
    assert trusted.caller_from(bearer(service, "manager_svc")) == Caller(
        "manager_svc", Role.MANAGER
    )


def test_a_token_of_a_key_outside_the_jwks_is_refused(
    tmp_path: Path, provider: KeyFiles, service: KeyFiles
) -> None:
    stranger = ensure_keys(tmp_path / "stranger")
    trusted = verifier(merge_jwks([provider.jwks, service.jwks], tmp_path / "trusted.json"))
    with pytest.raises(Unauthenticated, match="unknown key"):
        trusted.caller_from(bearer(stranger, "mallory"))


def test_a_pem_key_trusts_its_own_tokens_only(provider: KeyFiles, service: KeyFiles) -> None:
    trusted = verifier(provider.public_key)
    assert trusted.caller_from(bearer(provider, "kim")).subject == "kim"
    with pytest.raises(Unauthenticated, match="invalid token"):
        trusted.caller_from(bearer(service, "manager_svc"))


def key_id(keys: KeyFiles) -> str:
    return json.loads(keys.jwks.read_text())["keys"][0]["kid"]


def test_each_key_pair_has_its_own_stable_key_id(provider: KeyFiles, service: KeyFiles) -> None:
    assert key_id(provider) != key_id(service)
    assert key_id(ensure_keys(provider.directory)) == key_id(provider)


def split_verifier(provider: KeyFiles, service: KeyFiles) -> TokenVerifier:
    return TokenVerifier(JwtSettings(provider.jwks, DEV_ISSUER, DEV_AUDIENCE, service.jwks))


def test_the_service_key_signs_service_tokens_and_the_users_key_user_tokens(
    provider: KeyFiles, service: KeyFiles
) -> None:
    trusted = split_verifier(provider, service)
    manager_svc = f"Bearer {mint_token(service, Role.SERVICE, 'manager_svc')}"
    assert trusted.caller_from(manager_svc) == Caller("manager_svc", Role.SERVICE)
    assert trusted.caller_from(bearer(provider, "kim")) == Caller("kim", Role.MANAGER)


@pytest.mark.parametrize(
    ("signer", "role"),
    [
        ("service", Role.CUSTOMER),
        ("service", Role.MANAGER),
        ("service", Role.TRAINER),
        ("provider", Role.SERVICE),
    ],
)
def test_a_key_never_signs_a_role_outside_its_set(
    provider: KeyFiles, service: KeyFiles, signer: str, role: Role
) -> None:
    """The service key cannot mint a user token; the users' key cannot mint a service one."""
    keys = {"service": service, "provider": provider}[signer]
    with pytest.raises(Unauthenticated) as refused:
        split_verifier(provider, service).caller_from(f"Bearer {mint_token(keys, role, 'x')}")
    assert refused.value.reason == "KEY_NOT_TRUSTED_FOR_ROLE"


def test_one_key_trusted_for_users_and_services_is_refused(
    tmp_path: Path, provider: KeyFiles
) -> None:
    with pytest.raises(SharedTrustError, match="a key pair of its own"):
        TokenVerifier(JwtSettings(provider.jwks, DEV_ISSUER, DEV_AUDIENCE, provider.public_key))


@pytest.mark.parametrize("subject", ["", "   ", None])
def test_a_token_without_a_subject_is_refused(provider: KeyFiles, subject: str | None) -> None:
    claims = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "role": "customer", "exp": 2**31}
    if subject is not None:
        claims["sub"] = subject
    token = jwt.encode(
        claims,
        provider.private_key.read_bytes(),
        algorithm="RS256",
        headers={"kid": key_id(provider)},
    )
    with pytest.raises(Unauthenticated) as refused:
        verifier(provider.jwks).caller_from(f"Bearer {token}")
    assert refused.value.reason == "INVALID_SUBJECT"


def test_a_remembered_token_is_refused_once_it_expires(provider: KeyFiles) -> None:
    trusted = verifier(provider.jwks)
    token = f"Bearer {mint_token(provider, Role.CUSTOMER, 'ana', ttl_seconds=3)}"
    caller = trusted.caller_from(token)
    assert trusted.caller_from(token) == caller  # the second call is answered from memory
    while time.time() <= (caller.expires_at or 0):
        time.sleep(0.05)
    with pytest.raises(Unauthenticated) as refused:
        trusted.caller_from(token)
    assert refused.value.reason == "TOKEN_EXPIRED"


def test_a_tampered_copy_of_a_remembered_token_is_verified_and_refused(
    provider: KeyFiles,
) -> None:
    trusted = verifier(provider.jwks)
    token = mint_token(provider, Role.CUSTOMER, "ana")
    trusted.caller_from(f"Bearer {token}")
    header, _, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps(
            {**jwt.decode(token, options={"verify_signature": False}), "role": "manager"}
        ).encode()
    ).decode()
    with pytest.raises(Unauthenticated, match="invalid token"):
        trusted.caller_from(f"Bearer {header}.{forged}.{signature}")


def test_the_verifier_remembers_a_bounded_number_of_tokens(provider: KeyFiles) -> None:
    trusted = TokenVerifier(JwtSettings(provider.jwks, DEV_ISSUER, DEV_AUDIENCE), remembered=3)
    tokens = [f"Bearer {mint_token(provider, Role.CUSTOMER, f'c{n}')}" for n in range(5)]
    callers = [trusted.caller_from(token) for token in tokens]
    assert [c.subject for c in callers] == [f"c{n}" for n in range(5)]
    assert len(trusted._verified) == 3
