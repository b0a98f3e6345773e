"""A local certificate authority for TLS under ``make run`` (``PT_TLS=1``) and the tests.

:func:`ensure_tls` makes, once, under ``<var>/tls/`` (``NAME.pem`` and ``NAME-key.pem``):

- ``ca``: the authority every part trusts, and the only one;
- ``gateway``: Envoy's server certificate, for the public and the internal listener;
- ``envoy``: Envoy's client certificate towards the services (mutual TLS);
- ``<context>-svc``: each service's certificate, as a server (Envoy checks the name) and
  as a client (manager_svc presents its own to the internal listener, which admits only
  ``manager-svc``);
- ``ptctl``: the launcher's client certificate, for its health checks.

Every file is created mode 0600 (the folder 0700) before a byte is written, and is never
committed (``var/`` and ``*.pem`` are git-ignored). A certificate close to its expiry is
issued again; a new authority issues every certificate again.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ptctl.envoy import GatewayTls

CA_DAYS = 365
LEAF_DAYS = 90
RENEW_BEFORE = datetime.timedelta(days=7)
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")
GATEWAY_NAMES = ("gateway", "envoy-internal")
INTERNAL_CLIENT = "manager-svc"
"""The one client certificate name Envoy's internal listener admits."""


def service_name(context: str) -> str:
    """The name in a service's certificate (its Kubernetes Service's name too)."""
    return f"{context}-svc"


@dataclass(frozen=True)
class CertificatePair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class LocalCa:
    """The files of the local authority and what it issued."""

    directory: Path

    def pair(self, name: str) -> CertificatePair:
        return CertificatePair(self.directory / f"{name}.pem", self.directory / f"{name}-key.pem")

    @property
    def ca_file(self) -> Path:
        return self.pair("ca").cert

    def service_env(self, context: str) -> dict[str, str]:
        """A service's PT_TLS_* (ptkit.tls.TlsFiles.from_env)."""
        pair = self.pair(service_name(context))
        return {
            "PT_TLS_CERT_FILE": str(pair.cert),
            "PT_TLS_KEY_FILE": str(pair.key),
            "PT_TLS_CA_FILE": str(self.ca_file),
        }

    def gateway(self) -> GatewayTls:
        server, client = self.pair("gateway"), self.pair("envoy")
        return GatewayTls(
            ca_file=self.ca_file,
            cert_file=server.cert,
            key_file=server.key,
            client_cert_file=client.cert,
            client_key_file=client.key,
            internal_client_name=INTERNAL_CLIENT,
        )

    def client_credentials(self, name: str = "ptctl") -> grpc.ChannelCredentials:
        """Credentials of a client holding ``name``'s certificate (the launcher's by default)."""
        pair = self.pair(name)
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(),
            private_key=pair.key.read_bytes(),
            certificate_chain=pair.cert.read_bytes(),
        )


def ensure_tls(
    directory: Path, contexts: list[str] | tuple[str, ...], gateway_names: tuple[str, ...] = ()
) -> LocalCa:
    """The authority under ``directory`` and every certificate the platform needs.

    ``gateway_names``: further names of the gateway's certificate (the cluster's DNS
    names of its Services, the public host name). A certificate whose names differ from
    what is asked is issued again, as is one close to its expiry.
    """
    ca = LocalCa(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_pair = ca.pair("ca")
    renew_all = not _fresh(ca_pair)
    if renew_all:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(ca_pair.key, _key_pem(key))
        _write_private(ca_pair.cert, _pem(_ca_certificate(key)))
    authority = _load(ca_pair)
    leaves: dict[str, tuple[tuple[str, ...], bool, bool]] = {
        "gateway": ((*GATEWAY_NAMES, *gateway_names, *LOOPBACK_NAMES), True, False),
        "envoy": (("envoy",), False, True),
        "ptctl": (("ptctl",), False, True),
        **{service_name(c): ((service_name(c), *LOOPBACK_NAMES), True, True) for c in contexts},
    }
    for name, (names, server, client) in leaves.items():
        pair = ca.pair(name)
        if renew_all or not _fresh(pair, names):
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(pair.key, _key_pem(key))
            _write_private(pair.cert, _pem(_leaf(authority, key, names, server, client)))
    return ca


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _fresh(pair: CertificatePair, names: tuple[str, ...] | None = None) -> bool:
    """Both files exist, the certificate is not close to expiry, and it names ``names``."""
    if not (pair.cert.exists() and pair.key.exists()):
        return False
    certificate = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    if names is not None:
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        if set(alternative.value.get_values_for_type(x509.DNSName)) != set(names):
            return False
    return certificate.not_valid_after_utc - RENEW_BEFORE > _now()


def _load(pair: CertificatePair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(pair.cert.read_bytes()), key


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PtPlatform local CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf(
    authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...],
    server: bool,
    client: bool,
) -> x509.Certificate:
    ca_cert, ca_key = authority
    alternative: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    if server:
        alternative += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOOPBACK_IPS]
    usages = [
        *([ExtendedKeyUsageOID.SERVER_AUTH] if server else []),
        *([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []),
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file that is 0600 from its first byte, then move it in place."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
