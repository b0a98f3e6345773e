"""TLS for a service's gRPC server and its outbound channels (``PT_TLS_*``).

With ``PT_TLS_CERT_FILE``, ``PT_TLS_KEY_FILE`` and ``PT_TLS_CA_FILE`` set, the service's
gRPC server speaks TLS only and requires a client certificate the CA signed (mutual TLS):
a caller without one (anyone but Envoy and the platform's own tooling) gets no
connection, before any byte of a call is read. The service's outbound channels
(manager_svc -> Envoy's internal listener) check the server under the same CA and
present the service's own certificate. With none of them set, everything is plaintext.

A PostgreSQL URL may carry libpq's TLS parameters (``sslmode``, ``sslrootcert``,
``sslcert``, ``sslkey``); :func:`postgres_ssl` turns them into what asyncpg takes, so
``sslmode=verify-full`` checks the server's certificate and name, and never falls back
to plaintext.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy.engine import URL

from ptkit.config import ConfigError, Env

VARIABLES = ("PT_TLS_CERT_FILE", "PT_TLS_KEY_FILE", "PT_TLS_CA_FILE")


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path

    @classmethod
    def from_env(cls, env: Env) -> TlsFiles | None:
        """All three variables, or none (plaintext); each names an existing file."""
        values = {name: env.str(name, "") for name in VARIABLES}
        given = [name for name, value in values.items() if value]
        if not given:
            return None
        if len(given) < len(VARIABLES):
            missing = ", ".join(sorted(set(VARIABLES) - set(given)))
            raise ConfigError(f"{', '.join(given)} set without {missing}: set all three or none")
        for name, value in values.items():
            if not Path(value).is_file():
                raise ConfigError(f"{name}={value!r} does not exist")
        return cls(*(Path(values[name]) for name in VARIABLES))

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS with the service's certificate; a client certificate from the CA required."""
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=self.ca_file.read_bytes(),
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """The server checked under the CA; the service's certificate as the client's."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(),
            private_key=self.key_file.read_bytes(),
            certificate_chain=self.cert_file.read_bytes(),
        )


def aio_channel(
    address: str,
    tls: TlsFiles | None,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """An outbound channel: mutual TLS with ``tls``, plaintext without."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        address, tls.channel_credentials(), options=options, interceptors=interceptors
    )


POSTGRES_SSL_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def postgres_ssl(url: URL) -> tuple[URL, dict[str, Any]]:
    """``url`` without libpq's TLS parameters, and asyncpg's ``connect_args`` for them.

    ``verify-full``: TLS required, the certificate checked under ``sslrootcert`` (else the
    system's CAs) and the host name against it; ``verify-ca`` the same without the name.
    """
    query: Mapping[str, Any] = url.query
    given = {k: str(query[k]) for k in POSTGRES_SSL_PARAMETERS if k in query}
    if not given:
        return url, {}
    bare = url.difference_update_query(POSTGRES_SSL_PARAMETERS)
    mode = given.get("sslmode", "prefer")
    if mode not in SSL_MODES:
        raise ConfigError(f"sslmode={mode!r} is invalid: expected one of {', '.join(SSL_MODES)}")
    if not mode.startswith("verify-"):
        return bare, {"ssl": mode}
    for name in ("sslrootcert", "sslcert", "sslkey"):
        if name in given and not Path(given[name]).is_file():
            raise ConfigError(f"the database URL's {name}={given[name]!r} does not exist")
    context = ssl.create_default_context(cafile=given.get("sslrootcert"))
    context.check_hostname = mode == "verify-full"
    if "sslcert" in given:
        context.load_cert_chain(given["sslcert"], given.get("sslkey"))
    return bare, {"ssl": context}
