"""The certificates TLS in Kubernetes runs on: ``python -m ptctl.k8s_tls``.

Writes, with the local CA of :mod:`ptctl.tls`, the files the production overlay's
``secretGenerator`` makes the ``ptplatform-tls-*`` Secrets from (default
``deploy/k8s/overlays/production/secrets/tls/``, git-ignored): ``ca.pem``, the gateway's
certificate (the in-cluster names of the ``gateway`` and ``envoy-internal`` Services, and
each ``--public-name``), Envoy's client certificate and each service's. A second run keeps
what is still valid and issues again what is within a week of expiry or names other
hosts; ``ca-key.pem`` stays on this machine (it is in no Secret).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ptctl import k8s
from ptctl.launcher import CONTEXTS, ROOT
from ptctl.tls import LocalCa, ensure_tls

DEFAULT_OUT = ROOT / "deploy" / "k8s" / "overlays" / "production" / "secrets" / "tls"


def write_certificates(
    out: Path, namespace: str = k8s.NAMESPACE, public_names: tuple[str, ...] = ()
) -> LocalCa:
    """The CA and every part's certificate under ``out``, for the cluster's ``namespace``."""
    return ensure_tls(out, CONTEXTS, (*k8s.gateway_names(namespace), *public_names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ptctl.k8s_tls", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    parser.add_argument("--namespace", default=k8s.NAMESPACE, help="namespace the platform runs in")
    parser.add_argument(
        "--public-name",
        action="append",
        default=[],
        help="a host name clients reach the gateway by (repeatable)",
    )
    args = parser.parse_args(argv)
    ca = write_certificates(args.out, args.namespace, tuple(args.public_name))
    print(f"certificates in {ca.directory}; clients of the gateway trust {ca.ca_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
