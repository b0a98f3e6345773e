"""Development keys, made on first use and never committed: two RSA key pairs.

- the users' pair under ``<dir>/`` (``jwt/`` under the var dir): ``ptctl token`` signs
  user tokens with it; Envoy and the services trust its JWKS for the user roles;
- the service pair under ``<dir>/service/``: manager_svc signs its service token for
  trainer_svc.CancelSchedule with it; the services trust its JWKS
  (``<dir>/services-jwks.json``) for the service role only, the public listener never.

Private keys are 0600 from their first byte (created with that mode, under a 077 umask,
and moved into place whole), their directories 0700.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ptkit.tokens import KeyFiles, key_id_of

PRIVATE_UMASK = 0o077
"""What ptctl runs under: nothing it creates (keys, databases, logs, JetStream's store)
is readable by other local users."""

SERVICE_KEYS_DIR = "service"
SERVICES_JWKS = "services-jwks.json"


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` with ``mode`` from the first byte: a temporary file is
    created with that mode in the same directory, filled, then renamed over ``path``."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    finally:
        os.umask(previous)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def private_directory(directory: Path) -> Path:
    """``directory`` (and missing parents) created 0700; an existing one is narrowed to 0700."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def open_private_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, 0600 (an existing log is narrowed to it) in a 0700
    directory: logs may name customers and must not be read by other local users."""
    private_directory(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def ensure_keys(directory: Path) -> KeyFiles:
    """Create the key pair once and keep its JWKS in step with it; later calls reuse them."""
    files = KeyFiles(directory)
    private_directory(directory)
    if not (files.private_key.exists() and files.public_key.exists()):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_private(
            files.private_key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_private(
            files.public_key,
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
    public_pem = files.public_key.read_bytes()
    jwk = json.loads(RSAAlgorithm.to_jwk(serialization.load_pem_public_key(public_pem)))
    jwk.update({"kid": key_id_of(public_pem), "alg": "RS256", "use": "sig"})
    jwks = json.dumps({"keys": [jwk]})
    if not files.jwks.exists() or files.jwks.read_text() != jwks:
        write_private(files.jwks, jwks.encode())
    return files


@dataclass(frozen=True)
class PlatformKeys:
    """Both key pairs of a platform, and the JWKS the services trust for the service role."""

    users: KeyFiles
    service: KeyFiles

    @property
    def services_jwks(self) -> Path:
        return self.users.directory / SERVICES_JWKS


def ensure_platform_keys(directory: Path) -> PlatformKeys:
    """The users' pair in ``directory``, the service pair in ``directory/service`` and
    ``directory/services-jwks.json`` (the service pair's public JWKS), made once."""
    keys = PlatformKeys(ensure_keys(directory), ensure_keys(directory / SERVICE_KEYS_DIR))
    merge_jwks([keys.service.jwks], keys.services_jwks)
    return keys


def merge_jwks(files: list[Path], into: Path) -> Path:
    """One JWKS holding the keys of several JWKS files (duplicates by kid once)."""
    keys: dict[str, dict[str, object]] = {}
    for path in files:
        for key in json.loads(path.read_text())["keys"]:
            keys.setdefault(key.get("kid", ""), key)
    text = json.dumps({"keys": list(keys.values())})
    if not into.exists() or into.read_text() != text:
        write_private(into, text.encode())
    return into
