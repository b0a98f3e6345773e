"""Development keys: an RSA key pair under ``var/jwt/`` made on first use, never committed.

Envoy reads the JWKS, services read the public key (or a JWKS merged with the identity
provider's), ``ptctl token`` and manager_svc sign with the private key.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ptkit.tokens import KeyFiles, key_id_of


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


def merge_jwks(files: list[Path], into: Path) -> Path:
    """One JWKS holding the keys of several JWKS files (duplicates by kid once)."""
    keys: dict[str, dict[str, object]] = {}
    for path in files:
        for key in json.loads(path.read_text())["keys"]:
            keys.setdefault(key.get("kid", ""), key)
    into.write_text(json.dumps({"keys": list(keys.values())}))
    return into
