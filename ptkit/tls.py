"""TLS for a service's gRPC server and its outbound channels (``PT_TLS_*``).

With ``PT_TLS_CERT_FILE``, ``PT_TLS_KEY_FILE`` and ``PT_TLS_CA_FILE`` set, the service's
gRPC server speaks TLS only and requires a client certificate the CA signed (mutual TLS):
a caller without one (anyone but Envoy and the platform's own tooling) gets no
connection, before any byte of a call is read. The service's outbound channels
(manager_svc -> Envoy's internal listener) check the server under the same CA and
present the service's own certificate. With none of them set, everything is plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

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
    address: str, tls: TlsFiles | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """An outbound channel: mutual TLS with ``tls``, plaintext without."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, tls.channel_credentials(), options=options)
