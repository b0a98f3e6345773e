"""The NetworkPolicies allow exactly the platform's flows, and nothing else.

The flows are computed from the manifests as ``kubectl kustomize`` renders them: every
pod template of the platform, plus the peers around it (the internet, Prometheus, the
cluster DNS, each service's external PostgreSQL, a stray pod in the namespace, a
look-alike Prometheus in another namespace), evaluated with the NetworkPolicy semantics
of the Kubernetes API (a pod selected by a policy of a type is isolated for that
direction; a flow needs both the sender's egress and the receiver's ingress).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ptctl import k8s
from tests.deploy.test_k8s_manifests import BASE, kustomize_build

NAME = "app.kubernetes.io/name"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
SERVICES = ("order-svc", "manager-svc", "trainer-svc", "status-svc")
DATABASES = {
    "order-svc": "198.51.100.11",
    "manager-svc": "198.51.100.12",
    "trainer-svc": "198.51.100.13",
    "status-svc": "198.51.100.14",
}
"""The placeholder address of each service's database in network-policies.yaml."""


@dataclass(frozen=True)
class Port:
    name: str | None
    number: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Peer:
    """A pod (``namespace`` set) or an address outside the cluster (``namespace`` None)."""

    name: str
    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()

    @property
    def platform(self) -> bool:
        return self.namespace == k8s.NAMESPACE


def pod_peers(resources: list[dict[str, Any]]) -> list[Peer]:
    """One peer per pod template, named after its ``app.kubernetes.io/name``. The stream
    provisioning Job is added as the pod its manifest describes when the build has none."""
    peers = []
    for number, workload in enumerate(r for r in resources if r["kind"] in WORKLOADS):
        template = workload["spec"]["template"]
        labels = template["metadata"]["labels"]
        ports = tuple(
            Port(p.get("name"), p["containerPort"], p.get("protocol", "TCP"))
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        )
        peers.append(Peer(labels[NAME], f"10.0.0.{number + 10}", k8s.NAMESPACE, labels, ports))
    if not any(p.name == "nats-provision" for p in peers):
        part_of = {"app.kubernetes.io/part-of": "ptplatform"}
        peers.append(
            Peer("nats-provision", "10.0.0.200", k8s.NAMESPACE, {NAME: "nats-provision"} | part_of)
        )
    return peers


OUTSIDE = [
    Peer("internet", "203.0.113.7", ports=(Port("https", 443),)),
    Peer("stray-pod", "10.0.1.1", k8s.NAMESPACE, {NAME: "debug"}, (Port("http", 8000),)),
    Peer("prometheus", "10.0.2.1", "monitoring", {NAME: "prometheus"}),
    Peer("prometheus-elsewhere", "10.0.3.1", "default", {NAME: "prometheus"}),
    Peer(
        "kube-dns",
        "10.0.4.1",
        "kube-system",
        {"k8s-app": "kube-dns"},
        (Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP")),
    ),
    *(Peer(f"{svc}-db", ip, ports=(Port("postgres", 5432),)) for svc, ip in DATABASES.items()),
]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        present, values = key in labels, expression.get("values") or []
        holds = {
            "In": present and labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not holds:
            return False
    return True


def peer_matches(rule_peer: Mapping[str, Any], target: Peer, namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        ip = ipaddress.ip_address(target.ip)
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if target.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        namespace_labels = {"kubernetes.io/metadata.name": target.namespace}
        if not selects(rule_peer["namespaceSelector"], namespace_labels):
            return False
    elif target.namespace != namespace:
        return False
    return "podSelector" not in rule_peer or selects(rule_peer["podSelector"], target.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, port: Port) -> bool:
    if not rule_ports:
        return True
    for rule in rule_ports:
        if rule.get("protocol", "TCP") != port.protocol:
            continue
        wanted = rule.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if wanted == port.name:
                return True
        elif wanted <= port.number <= rule.get("endPort", wanted):
            return True
    return False


def policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def allows(
    policies: list[dict[str, Any]], direction: str, pod: Peer, other: Peer, port: Port
) -> bool:
    """Whether ``pod``'s policies of ``direction`` let it talk with ``other`` on ``port``."""
    if pod.namespace is None:
        return True
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in policy_types(p)
        and selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        (
            not rule.get(peers_key)
            or any(peer_matches(q, other, p["metadata"]["namespace"]) for q in rule[peers_key])
        )
        and port_matches(rule.get("ports"), port)
        for p in selecting
        for rule in p["spec"].get(key) or []
    )


def allowed_flows(resources: list[dict[str, Any]]) -> set[str]:
    """Every ``"from -> to:port/protocol"`` the policies let through, where at least one
    end is a pod of the platform's namespace."""
    policies = [r for r in resources if r["kind"] == "NetworkPolicy"]
    peers = pod_peers(resources) + OUTSIDE
    return {
        f"{source.name} -> {target.name}:{port.number}/{port.protocol}"
        for source, target, port in _candidates(peers)
        if allows(policies, "Egress", source, target, port)
        and allows(policies, "Ingress", target, source, port)
    }


def _candidates(peers: list[Peer]) -> Iterator[tuple[Peer, Peer, Port]]:
    for source in peers:
        for target in peers:
            if source.platform or target.platform:
                yield from ((source, target, port) for port in target.ports)


def expected_flows(resources: list[dict[str, Any]]) -> set[str]:
    pods = pod_peers(resources)
    platform = {p.name for p in pods}
    ports = {p.name: {port.name: port.number for port in p.ports} for p in pods}
    outside_namespace = [p.name for p in OUTSIDE if not p.platform]
    return {
        # the public gateway, from anything outside the namespace
        *(f"{name} -> envoy:8080/TCP" for name in outside_namespace),
        # only Envoy reaches the services' gRPC ports
        *(f"envoy -> {svc}:{ports[svc]['grpc']}/TCP" for svc in SERVICES),
        # only manager_svc reaches the internal listener
        "manager-svc -> envoy:8081/TCP",
        # only the services and the provisioning Job reach NATS; routes between servers
        *(f"{name} -> nats:4222/TCP" for name in (*SERVICES, "nats-provision")),
        "nats -> nats:6222/TCP",
        # each service its own database
        *(f"{svc} -> {svc}-db:5432/TCP" for svc in SERVICES),
        # Prometheus in the monitoring namespace scrapes metrics and Envoy's stats
        *(f"prometheus -> {svc}:{ports[svc]['metrics']}/TCP" for svc in SERVICES),
        "prometheus -> envoy:9902/TCP",
        f"prometheus -> nats:{ports['nats']['metrics']}/TCP",  # the exporter sidecar
        # every platform pod resolves names
        *(f"{name} -> kube-dns:53/{proto}" for name in platform for proto in ("UDP", "TCP")),
    }


def test_policies_allow_exactly_the_platforms_flows() -> None:
    resources = kustomize_build(BASE)
    allowed, expected = allowed_flows(resources), expected_flows(resources)
    assert allowed - expected == set(), "allowed but not expected"
    assert expected - allowed == set(), "expected but denied"


def test_every_platform_pod_is_isolated_both_ways() -> None:
    resources = kustomize_build(BASE)
    policies = [r for r in resources if r["kind"] == "NetworkPolicy"]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(policy_types(p)) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert [p["metadata"]["name"] for p in deny] == ["default-deny"]
    assert {p["metadata"]["namespace"] for p in policies} == {k8s.NAMESPACE}


def test_without_the_default_deny_a_stray_pod_would_reach_the_internet() -> None:
    """The evaluator is not vacuous: the default deny is what holds a stray pod in."""
    resources = [
        r
        for r in kustomize_build(BASE)
        if not (r["kind"] == "NetworkPolicy" and r["metadata"]["name"] == "default-deny")
    ]
    assert "stray-pod -> internet:443/TCP" in allowed_flows(resources)
    assert "stray-pod -> internet:443/TCP" not in allowed_flows(kustomize_build(BASE))
