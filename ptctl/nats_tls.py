"""TLS for the NATS cluster in Kubernetes, issued by the local CA of :mod:`ptctl.tls`:
the certificate clients see (``nats``: the ``nats`` Service and every pod of the headless
Service) and the route certificate the servers present to each other (``nats-route``:
cluster routes are mutual TLS, so only a holder of a certificate of this CA joins).

``write_tls_files`` makes them under the production overlay's git-ignored
``secrets/nats/tls/`` (``make k8s-nats-config``); a later run keeps what is still valid.
The CA's key (``ca-key.pem``) stays there, in no Secret. An operator with a CA of their
own puts its files there instead, under the same names.
"""

from __future__ import annotations

from pathlib import Path

from ptctl.tls import LocalCa, ensure_certificates

SERVER = "nats"
ROUTE = "nats-route"


def server_names(namespace: str) -> tuple[str, ...]:
    """What clients and routes dial: the Service and each pod of the headless Service."""
    return (
        "nats",
        f"nats.{namespace}",
        f"nats.{namespace}.svc",
        f"nats.{namespace}.svc.cluster.local",
        f"*.nats-headless.{namespace}.svc.cluster.local",
    )


def write_tls_files(directory: Path, namespace: str) -> LocalCa:
    """The CA, the clients' certificate and the route certificate (a route dials its
    peers, so its certificate is a client one too)."""
    names = server_names(namespace)
    return ensure_certificates(
        directory, {SERVER: (names, True, False), ROUTE: (names[-1:], True, True)}
    )


def secret_files(ca: LocalCa) -> dict[str, Path]:
    """The ``nats-tls`` Secret's keys (what ``nats.conf`` reads under /etc/nats/tls/)
    and the files they come from."""
    server, route = ca.pair(SERVER), ca.pair(ROUTE)
    return {
        "ca.crt": ca.ca_file,
        "server.crt": server.cert,
        "server.key": server.key,
        "route.crt": route.cert,
        "route.key": route.key,
    }
