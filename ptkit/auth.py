"""Who is calling, and what they may do.

Envoy's jwt_authn checks every public call; each service checks the same bearer token
again with the platform's public key (:class:`TokenVerifier`), so a service reached
without the gateway trusts no header it did not verify itself. Authorization rules live
here once and are called by every service's access rules (``<svc>/application/access.py``).
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

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


@dataclass(frozen=True)
class JwtSettings:
    public_key_file: Path
    """A PEM public key, or a JWKS (JSON) of several keys told apart by their ``kid``."""
    issuer: str
    audience: str


def load_verification_keys(path: Path) -> dict[str | None, Any]:
    """The keys a token may be signed with, by key id; a lone PEM key has id None."""
    text = path.read_text()
    if not text.lstrip().startswith("{"):
        return {None: text.encode()}
    return {key.key_id: key.key for key in jwt.PyJWKSet.from_json(text).keys}


class TokenVerifier:
    """Verifies RS256 bearer tokens: signature, expiry, issuer, audience, role.

    Trusting a JWKS of several keys lets the identity provider's keys and the platform's
    own service key (manager_svc's calls to trainer_svc) stand side by side.
    """

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys = load_verification_keys(settings.public_key_file)

    def _key_for(self, token: str) -> Any:
        if None in self._keys:
            return self._keys[None]
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        if key_id not in self._keys:
            raise Unauthenticated(f"invalid token: signed with an unknown key {key_id!r}")
        return self._keys[key_id]

    def caller_from(self, authorization: str | None) -> Caller:
        if not authorization:
            raise Unauthenticated("missing bearer token (Authorization: Bearer <JWT>)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization must be 'Bearer <JWT>'")
        try:
            claims = jwt.decode(
                token.strip(),
                self._key_for(token.strip()),
                algorithms=["RS256"],
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        try:
            role = Role(claims.get("role", ""))
        except ValueError:
            raise Unauthenticated(f"token has unknown role {claims.get('role')!r}") from None
        return Caller(subject=str(claims["sub"]), role=role)
