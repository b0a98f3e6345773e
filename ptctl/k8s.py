"""Render the Kubernetes Envoy ConfigMap (``deploy/k8s/base/envoy-config.yaml``).

The gateway in the cluster runs the same template as ``make run`` (``envoy/envoy.yaml.j2``);
only the endpoints differ: every service is a headless Service whose DNS name resolves
to one address per ready pod, so the clusters are STRICT_DNS and Envoy balances gRPC
calls across pods (a ClusterIP would pin each HTTP/2 connection to one pod).

TLS: the public listener serves TLS, Envoy reaches every service over mutual TLS and the
internal listener admits manager_svc's certificate only, with the certificates mounted
from the ``ptplatform-tls-*`` Secrets (one per part, ``tls.crt``/``tls.key``/``ca.crt``;
``python -m ptctl.k8s_tls`` writes the files the production overlay makes them from).

``python -m ptctl.k8s`` rewrites the committed file; a test checks it is up to date.
"""

from __future__ import annotations

import argparse
from pathlib import Path, PurePosixPath

from ptctl.envoy import (
    EdgeSettings,
    GatewaySettings,
    GatewayTls,
    InternalRouteSettings,
    JwtGateway,
    render,
)
from ptctl.launcher import CONTEXTS, DEFAULT_SERVICE_PORTS, ROOT
from ptctl.launcher import DESCRIPTOR as LOCAL_DESCRIPTOR
from ptkit.tokens import DEV_AUDIENCE, DEV_ISSUER

NAMESPACE = "ptplatform"
BASE = ROOT / "deploy" / "k8s" / "base"
ENVOY_CONFIGMAP = BASE / "envoy-config.yaml"
ENVOY_CONFIGMAP_NAME = "envoy-config"
ENVOY_CONFIG_DIR = PurePosixPath("/etc/envoy")
ENVOY_CONFIG_KEY = "envoy.yaml"

# Paths inside the pods: the image's working directory (Dockerfile) and the JWT Secret mount.
DESCRIPTOR = PurePosixPath("/app/build/ptplatform.pb")
JWKS = PurePosixPath("/etc/ptplatform/jwt/jwks.json")
SERVICES_JWKS = PurePosixPath("/etc/ptplatform/jwt/services-jwks.json")
"""What the services trust (the ptplatform-jwt Secret): the internal listener's keys."""

# TLS: each part mounts its Secret ptplatform-tls-<part> (kubernetes.io/tls, with the CA
# as ca.crt) at TLS_DIR; Envoy mounts its server and its client certificate side by side.
TLS_DIR = PurePosixPath("/etc/ptplatform/tls")
TLS_CERT, TLS_KEY, TLS_CA = "tls.crt", "tls.key", "ca.crt"
GATEWAY_TLS_DIR = TLS_DIR / "gateway"
ENVOY_CLIENT_TLS_DIR = TLS_DIR / "envoy"
INTERNAL_SERVICE = "envoy-internal"
PUBLIC_SERVICE = "gateway"


ADMIN_SOCKET = PurePosixPath("/var/run/envoy/admin.sock")
"""Envoy's admin socket, in an emptyDir only the Envoy container mounts."""
ENVOY_MEMORY_LIMIT = 512 * 1024 * 1024
"""The Envoy container's memory limit (deploy/k8s/base/envoy.yaml)."""

# Everything listens on the pod's address; the admin interface is a Unix socket in the
# pod and only its /ready and /stats/prometheus are exposed, on the stats port. The overload
# manager's heap limit stays under the container's memory limit, so Envoy sheds load
# before the kernel kills it.
GATEWAY = GatewaySettings(
    gateway_host="0.0.0.0",
    stats_port=9902,
    internal=InternalRouteSettings(host="0.0.0.0"),
    edge=EdgeSettings(max_heap_bytes=ENVOY_MEMORY_LIMIT * 3 // 4),
    admin_socket=str(ADMIN_SOCKET),
)


def service_host(context: str, namespace: str = NAMESPACE) -> str:
    """DNS name of a service's headless Service."""
    return f"{context}-svc.{namespace}.svc.cluster.local"


def tls_secret(part: str) -> str:
    """The Secret holding ``part``'s certificate (gateway, envoy, <ctx>-svc)."""
    return f"ptplatform-tls-{part}"


def gateway_tls() -> GatewayTls:
    """Envoy's TLS files, as the pod mounts them."""
    server, client = GATEWAY_TLS_DIR, ENVOY_CLIENT_TLS_DIR
    return GatewayTls(
        ca_file=Path(server / TLS_CA),
        cert_file=Path(server / TLS_CERT),
        key_file=Path(server / TLS_KEY),
        client_cert_file=Path(client / TLS_CERT),
        client_key_file=Path(client / TLS_KEY),
    )


def gateway_names(namespace: str = NAMESPACE) -> tuple[str, ...]:
    """The in-cluster names of Envoy's Services, which its certificate must carry
    (manager_svc checks ``envoy-internal.<namespace>.svc.cluster.local``)."""
    return tuple(
        f"{service}{suffix}"
        for service in (INTERNAL_SERVICE, PUBLIC_SERVICE)
        for suffix in (f".{namespace}", f".{namespace}.svc", f".{namespace}.svc.cluster.local")
    )


def render_envoy_config(
    namespace: str = NAMESPACE, issuer: str = DEV_ISSUER, audience: str = DEV_AUDIENCE
) -> str:
    endpoints = {
        context: [(service_host(context, namespace), DEFAULT_SERVICE_PORTS[context])]
        for context in CONTEXTS
    }
    return render(
        GATEWAY,
        endpoints,
        Path(DESCRIPTOR),
        JwtGateway(issuer, audience, Path(JWKS), Path(SERVICES_JWKS)),
        cluster_type="STRICT_DNS",
        api_descriptor=LOCAL_DESCRIPTOR,
        tls=gateway_tls(),
    )


def render_envoy_configmap(
    namespace: str = NAMESPACE, issuer: str = DEV_ISSUER, audience: str = DEV_AUDIENCE
) -> str:
    """The ConfigMap manifest holding the rendered ``envoy.yaml`` as a literal block."""
    config = render_envoy_config(namespace, issuer, audience)
    body = "".join(
        f"    {line}" if line.strip() else "\n" for line in config.splitlines(keepends=True)
    )
    return (
        "# Generated by `python -m ptctl.k8s` from envoy/envoy.yaml.j2: do not edit.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        f"  name: {ENVOY_CONFIGMAP_NAME}\n"
        "  labels:\n"
        "    app.kubernetes.io/name: envoy\n"
        "data:\n"
        f"  {ENVOY_CONFIG_KEY}: |\n"
        f"{body}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ptctl.k8s", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--namespace", default=NAMESPACE, help="namespace the platform runs in")
    parser.add_argument("--issuer", default=DEV_ISSUER, help="JWT issuer (same as PT_JWT_ISSUER)")
    parser.add_argument(
        "--audience", default=DEV_AUDIENCE, help="JWT audience (same as PT_JWT_AUDIENCE)"
    )
    parser.add_argument("--output", type=Path, default=ENVOY_CONFIGMAP)
    args = parser.parse_args(argv)
    args.output.write_text(render_envoy_configmap(args.namespace, args.issuer, args.audience))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
