"""Development signing keys and tokens.

``ensure_keys`` creates an RSA key pair under ``var/jwt/`` on first use (never
committed); Envoy reads the JWKS, services read the public key, ``ptctl token`` signs
with the private key. Production sets its own issuer, audience and public key instead.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

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


def ensure_keys(directory: Path) -> KeyFiles:
    """Create the key pair once and keep its JWKS in step with it; later calls reuse them."""
    files = KeyFiles(directory)
    if not (files.private_key.exists() and files.public_key.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        files.private_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        files.private_key.chmod(0o600)
        files.public_key.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    public_pem = files.public_key.read_bytes()
    jwk = json.loads(RSAAlgorithm.to_jwk(serialization.load_pem_public_key(public_pem)))
    jwk.update({"kid": key_id_of(public_pem), "alg": "RS256", "use": "sig"})
    jwks = json.dumps({"keys": [jwk]})
    if not files.jwks.exists() or files.jwks.read_text() != jwks:
        files.jwks.write_text(jwks)
    return files


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


def merge_jwks(files: list[Path], into: Path) -> Path:
    """One JWKS holding the keys of several JWKS files (duplicates by kid once)."""
    keys: dict[str, dict[str, object]] = {}
    for path in files:
        for key in json.loads(path.read_text())["keys"]:
            keys.setdefault(key.get("kid", ""), key)
    into.write_text(json.dumps({"keys": list(keys.values())}))
    return into
