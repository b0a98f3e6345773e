"""The development sign-in's rules: a token for a user role and a valid id, never for the
service role, refusals naming the field in the API's error shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptctl.dev_sign_in import Issuer, error_body
from ptctl.keys import ensure_keys
from ptctl.launcher import PlatformConfig
from ptkit.auth import Caller, JwtSettings, Role, TokenVerifier
from ptkit.config import ConfigError, Env
from ptkit.domain import InvalidValue
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(ensure_keys(tmp_path / "jwt"), DEV_ISSUER, DEV_AUDIENCE)


@pytest.mark.parametrize("role", ["customer", "manager", "trainer"])
def test_a_user_signs_in_with_a_token_the_services_verify(issuer: Issuer, role: str) -> None:
    reply = issuer.sign_in({"role": role, "subject": "kim.lee@studio"})
    assert (reply["role"], reply["subject"], reply["expires_in"]) == (role, "kim.lee@studio", 3600)
    verifier = TokenVerifier(JwtSettings(issuer.keys.jwks, DEV_ISSUER, DEV_AUDIENCE))
    assert verifier.caller_from(f"Bearer {reply['token']}") == Caller("kim.lee@studio", Role(role))


@pytest.mark.parametrize(
    ("request_body", "reason", "field"),
    [
        ({"role": "service", "subject": "manager_svc"}, "INVALID_ROLE", "role"),
        ({"subject": "alice"}, "INVALID_ROLE", "role"),
        ({"role": "customer"}, "REQUIRED", "subject"),
        ({"role": "customer", "subject": ""}, "REQUIRED", "subject"),
        ({"role": "customer", "subject": "a b"}, "INVALID_ID", "subject"),
        ({"role": "customer", "subject": 7}, "REQUIRED", "subject"),
        ({"role": "customer", "subject": "x" * 65}, "INVALID_ID", "subject"),
        ({"role": "customer", "subject": "alice", "ttl": 999999}, "UNKNOWN_FIELD", "ttl"),
        (["customer", "alice"], "MALFORMED_JSON", None),
    ],
)
def test_a_refusal_names_the_field_at_fault(
    issuer: Issuer, request_body: object, reason: str, field: str | None
) -> None:
    with pytest.raises(InvalidValue) as refused:
        issuer.sign_in(request_body)
    assert (refused.value.reason, refused.value.field) == (reason, field)
    body = error_body(refused.value)
    assert body["code"] == 3
    info, *rest = body["details"]
    assert info["reason"] == reason
    if field:
        assert rest[0]["field_violations"][0]["field"] == field


def test_make_run_signs_in_by_default_and_a_production_issuer_switches_it_off(
    tmp_path: Path,
) -> None:
    jwks = tmp_path / "idp.json"
    jwks.write_text("{}")
    assert PlatformConfig.defaults(tmp_path, Env({})).dev_sign_in
    assert not PlatformConfig.defaults(tmp_path, Env({"PT_JWT_JWKS_FILE": str(jwks)})).dev_sign_in
    assert not PlatformConfig.defaults(tmp_path, Env({"PT_DEV_SIGN_IN": "0"})).dev_sign_in


def test_development_tokens_cannot_be_asked_of_a_platform_trusting_an_identity_provider(
    tmp_path: Path,
) -> None:
    jwks = tmp_path / "idp.json"
    jwks.write_text("{}")
    env = Env({"PT_JWT_JWKS_FILE": str(jwks), "PT_DEV_SIGN_IN": "1"})
    with pytest.raises(ConfigError, match="PT_DEV_SIGN_IN"):
        PlatformConfig.defaults(tmp_path, env)
