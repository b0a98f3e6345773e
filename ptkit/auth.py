"""Who is calling, and what they may do.

Envoy's jwt_authn checks every public call; each service checks the same bearer token
again with the platform's public key (:class:`TokenVerifier`), so a service reached
without the gateway trusts no header it did not verify itself. Authorization rules live
here once and are called by every service's access rules (``<svc>/application/access.py``).
"""

from __future__ import annotations

import contextvars
import enum
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from ptkit.config import ConfigError
from ptkit.domain import DomainError
from ptkit.validation import require_principal_id


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    MANAGER = "manager"
    TRAINER = "trainer"
    SERVICE = "service"
    """Another service of the platform (manager_svc calling trainer_svc through the
    internal listener), signed with the platform's service key, which the gateway does
    not trust: no public caller has this role."""


class Unauthenticated(DomainError):
    """No valid bearer token."""

    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """The caller's role or identity does not allow this (metadata: the caller's role)."""

    default_reason = "PERMISSION_DENIED"


@dataclass(frozen=True)
class Caller:
    subject: str
    role: Role
    expires_at: float | None = field(default=None, compare=False)
    """When the caller's token expires (seconds since the epoch): a long call (a watch)
    ends then. None: a caller made without a token (tests, tools)."""

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise PermissionDenied(
                f"role {self.role.value!r} may not do this (needs {allowed})",
                reason="ROLE_NOT_ALLOWED",
                metadata={"role": self.role.value, "allowed_roles": ",".join(roles)},
            )

    def require_customer_self_or_manager(self, customer_id: str) -> None:
        """Customers act only on their own data; managers on anyone's."""
        self.require(Role.CUSTOMER, Role.MANAGER)
        if self.role is Role.CUSTOMER and customer_id != self.subject:
            raise PermissionDenied(
                f"customer {self.subject!r} may not act for customer {customer_id!r}",
                metadata={"role": self.role.value},
            )

    def customer_or_own(self, customer_id: str) -> str:
        """The customer a call is about: a customer may leave it out and means their own;
        for anyone else an empty id stays empty."""
        return customer_id or (self.subject if self.role is Role.CUSTOMER else "")

    def customer_to_act_for(self, customer_id: str) -> str:
        """The one customer a per-customer call is about: customers may leave it out
        (their own) and name only their own; managers must name one; trainers may not."""
        customer_id = require_principal_id("customer_id", self.customer_or_own(customer_id))
        self.require_customer_self_or_manager(customer_id)
        return customer_id

    def require_trainer_self_or_manager(self, trainer_id: str) -> None:
        """Trainers act only on their own schedules; managers may read any."""
        self.require(Role.TRAINER, Role.MANAGER)
        if self.role is Role.TRAINER and trainer_id != self.subject:
            raise PermissionDenied(
                f"trainer {self.subject!r} may not act for trainer {trainer_id!r}",
                metadata={"role": self.role.value},
            )


_current: contextvars.ContextVar[Caller] = contextvars.ContextVar("ptplatform_caller")


def current_caller() -> Caller:
    """The authenticated caller of the gRPC call being handled."""
    return _current.get()


def bind_caller(caller: Caller) -> contextvars.Token[Caller]:
    return _current.set(caller)


def unbind_caller(token: contextvars.Token[Caller]) -> None:
    _current.reset(token)


USER_ROLES = frozenset({Role.CUSTOMER, Role.MANAGER, Role.TRAINER})
"""The roles the users' keys (the identity provider's, or ``ptctl token``'s) may sign."""
SERVICE_ROLES = frozenset({Role.SERVICE})
"""The roles the platform's service key may sign: no user role, ever."""


class SharedTrustError(ValueError):
    """The same key is configured for user tokens and for service tokens."""


@dataclass(frozen=True)
class JwtSettings:
    public_key_file: Path
    """The users' keys: a PEM public key, or a JWKS (JSON) of several keys told apart by
    their ``kid``. Trusted for the user roles only."""
    issuer: str
    audience: str
    service_key_file: Path | None = None
    """The platform's service keys (PEM or JWKS), trusted for the service role only;
    None: no service token is accepted."""


@dataclass(frozen=True)
class TrustedKey:
    """A public key and the roles a token signed with it may carry."""

    key_id: str | None
    """None for a lone PEM key: it is tried whatever ``kid`` a token names."""
    key: Any
    roles: frozenset[Role]


def load_verification_keys(path: Path) -> dict[str | None, Any]:
    """The keys a token may be signed with, by key id; a lone PEM key has id None."""
    text = path.read_text()
    if not text.lstrip().startswith("{"):
        return {None: serialization.load_pem_public_key(text.encode())}
    if not json.loads(text).get("keys"):
        return {}  # an empty set (a placeholder Secret) trusts nothing
    return {key.key_id: key.key for key in jwt.PyJWKSet.from_json(text).keys}


def _fingerprint(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def trusted_keys(settings: JwtSettings) -> list[TrustedKey]:
    """The users' keys for the user roles and the service keys for the service role.

    Raises :class:`SharedTrustError` when one key is in both sets: whoever holds it could
    sign a user token as well as a service token, which is what the split prevents.
    """
    users = load_verification_keys(settings.public_key_file)
    services = (
        load_verification_keys(settings.service_key_file) if settings.service_key_file else {}
    )
    shared = {_fingerprint(k) for k in users.values()} & {
        _fingerprint(k) for k in services.values()
    }
    if shared:
        raise SharedTrustError(
            f"{settings.service_key_file} holds a key that {settings.public_key_file} holds "
            "too: the service key must be a key pair of its own, never a users' key"
        )
    return [TrustedKey(kid, key, USER_ROLES) for kid, key in users.items()] + [
        TrustedKey(kid, key, SERVICE_ROLES) for kid, key in services.items()
    ]


def check_trust(settings: JwtSettings) -> None:
    """Refuse to start (:class:`ConfigError`, naming the variable) on a key file that is
    missing or unreadable, or on one key trusted for users and services alike."""
    files = {"PT_JWT_PUBLIC_KEY_FILE": settings.public_key_file}
    if settings.service_key_file is not None:
        files["PT_JWT_SERVICE_KEY_FILE"] = settings.service_key_file
    for variable, path in files.items():
        if not path.is_file():
            raise ConfigError(
                f"{variable}={str(path)!r} does not exist "
                "(run 'ptctl keys' once to create development keys)"
            )
        try:
            load_verification_keys(path)
        except (ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as error:
            raise ConfigError(f"{variable}={str(path)!r} holds no usable key: {error}") from None
    try:
        trusted_keys(settings)
    except SharedTrustError as error:
        raise ConfigError(f"PT_JWT_SERVICE_KEY_FILE: {error}") from None


class TokenVerifier:
    """Verifies RS256 bearer tokens: signature, expiry, issuer, audience, subject, role.

    A user token must be signed with one of the users' keys, a service token (manager_svc's
    calls to trainer_svc) with the platform's service key: a key never vouches for a role
    outside its set, so neither key can stand in for the other.

    A client sends the same token with every call until it expires, so the callers of the
    last ``remembered`` tokens that verified are kept, keyed by the token's exact bytes,
    until their expiry: a repeated token costs a dictionary lookup, not an RSA
    verification. A token that failed is never kept.
    """

    def __init__(self, settings: JwtSettings, remembered: int = 4096) -> None:
        self.settings = settings
        self._keys = trusted_keys(settings)
        self._remembered = remembered
        self._verified: OrderedDict[str, Caller] = OrderedDict()

    def _candidates(self, token: str) -> list[TrustedKey]:
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        named = [k for k in self._keys if k.key_id is not None and k.key_id == key_id]
        candidates = named or [k for k in self._keys if k.key_id is None]
        if not candidates:
            raise Unauthenticated(f"invalid token: signed with an unknown key {key_id!r}")
        return candidates

    def _decode(self, token: str) -> tuple[dict[str, Any], TrustedKey]:
        """The verified claims and the key that signed them."""
        candidates = self._candidates(token)
        for trusted in candidates:
            try:
                claims = jwt.decode(
                    token,
                    trusted.key,
                    algorithms=["RS256"],
                    issuer=self.settings.issuer,
                    audience=self.settings.audience,
                    options={"require": ["exp", "iss", "aud"], "verify_sub": False},
                )
            except jwt.InvalidSignatureError:
                if trusted is candidates[-1]:
                    raise
                continue
            return claims, trusted
        raise AssertionError("unreachable: the last candidate returns or raises")

    def caller_from(self, authorization: str | None) -> Caller:
        """The caller a bearer token names, and until when it holds."""
        if not authorization:
            raise Unauthenticated("missing bearer token (Authorization: Bearer <JWT>)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <JWT>'")
        token = token.strip()
        known = self._verified.get(token)
        if known is not None and known.expires_at is not None and known.expires_at > time.time():
            self._verified.move_to_end(token)
            return known
        self._verified.pop(token, None)
        caller = self._verify(token)
        self._verified[token] = caller
        if len(self._verified) > self._remembered:
            self._verified.popitem(last=False)
        return caller

    def _verify(self, token: str) -> Caller:
        try:
            claims, trusted = self._decode(token)
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated(
                "token has no subject (the sub claim is missing or empty)",
                reason="INVALID_SUBJECT",
            )
        try:
            role = Role(claims.get("role", ""))
        except ValueError:
            raise Unauthenticated(f"token has unknown role {claims.get('role')!r}") from None
        if role not in trusted.roles:
            raise Unauthenticated(
                f"a {role.value!r} token must not be signed with this key "
                f"(it is trusted for {', '.join(sorted(trusted.roles))} only)",
                reason="KEY_NOT_TRUSTED_FOR_ROLE",
            )
        return Caller(subject=subject, role=role, expires_at=float(claims["exp"]))
