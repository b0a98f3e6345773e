"""TLS for the NATS cluster in Kubernetes: a private CA, the certificate clients see
(``server.crt``, for the ``nats`` Service and every pod) and the route certificate the
servers present to each other (``route.crt``: cluster routes are mutual TLS, so only a
holder of a certificate of this CA joins the cluster).

``write_tls_files`` makes them once under the production overlay's git-ignored secrets
directory (``make k8s-nats-config``); an operator with a CA of their own puts its files
there instead, under the same names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA = "ca.crt"
SERVER = ("server.crt", "server.key")
ROUTE = ("route.crt", "route.key")
VALIDITY = timedelta(days=365)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    dns_names: list[str],
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), False)
        .add_extension(
            # routes dial each other: the route certificate is a client one too
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def server_names(namespace: str) -> list[str]:
    """What clients and routes dial: the Service and each pod of the headless Service."""
    return [
        "nats",
        f"nats.{namespace}",
        f"nats.{namespace}.svc",
        f"nats.{namespace}.svc.cluster.local",
        f"*.nats-headless.{namespace}.svc.cluster.local",
    ]


def write_tls_files(directory: Path, namespace: str) -> dict[str, Path]:
    """The CA and both certificates with their keys (keys mode 0600); kept when present."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / name for name in (CA, *SERVER, *ROUTE)}
    if all(path.exists() for path in paths.values()):
        return paths
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("ptplatform NATS CA"))
        .issuer_name(_name("ptplatform NATS CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .sign(ca_key, hashes.SHA256())
    )
    paths[CA].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    names = server_names(namespace)
    for (cert_name, key_name), common_name, dns in (
        (SERVER, "nats", names),
        (ROUTE, "nats-route", names[-1:]),
    ):
        cert, key = _issue(ca, ca_key, common_name, dns)
        paths[cert_name].write_bytes(cert)
        paths[key_name].write_bytes(key)
        paths[key_name].chmod(0o600)
    return paths
