"""Signing tokens with the platform's own key.

manager_svc signs its calls to trainer_svc with it (its service token); ``ptctl token``
signs development tokens with it. The key pair lives under ``var/jwt/`` (created by
``ptctl``, never committed); production sets its own issuer, audience and keys.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from ptkit.auth import Role

DEV_ISSUER = "https://auth.ptplatform.local"
DEV_AUDIENCE = "ptplatform"


@dataclass(frozen=True)
class KeyFiles:
    directory: Path

    @property
    def private_key(self) -> Path:
        return self.directory / "private.pem"

    @property
    def public_key(self) -> Path:
        return self.directory / "public.pem"

    @property
    def jwks(self) -> Path:
        return self.directory / "jwks.json"


def mint_token(
    files: KeyFiles,
    role: Role,
    subject: str,
    ttl_seconds: int = 3600,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
    now: float | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role.value,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(
        claims,
        files.private_key.read_bytes(),
        algorithm="RS256",
        headers={"kid": key_id_of(files.public_key.read_bytes())},
    )


def key_id_of(public_key_pem: bytes) -> str:
    """A key id that names this key and no other: a digest of the public key."""
    return "pt-" + hashlib.sha256(public_key_pem).hexdigest()[:16]


JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
"""A compact JWS: a base64url JSON header (``{"`` is ``eyJ``), a payload, a signature
(empty for ``alg: none``). What must never reach a log."""

REDACTED = "[redacted token]"


def redact_tokens(text: str) -> str:
    """``text`` with every JWT-shaped string replaced: a log line never carries a token,
    whoever put one in a message, an exception or an ``extra=`` field."""
    return JWT_SHAPE.sub(REDACTED, text)
