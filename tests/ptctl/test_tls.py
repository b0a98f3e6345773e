"""The local CA (ptctl/tls.py) and the gateway configuration ``PT_TLS=1`` renders."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from ptctl import tls
from ptctl.envoy import GatewaySettings, InternalRouteSettings
from ptctl.launcher import CONTEXTS, Platform, PlatformConfig
from ptkit.config import ConfigError, Env
from ptkit.tls import TlsFiles
from tests.helpers import assert_envoy_accepts

TLS_SOCKET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def names(path: Path) -> set[str]:
    extension = certificate(path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {str(n) for n in extension.value.get_values_for_type(x509.DNSName)}


def test_each_part_gets_a_certificate_naming_it_from_one_ca(tmp_path: Path) -> None:
    ca = tls.ensure_tls(tmp_path / "tls", CONTEXTS)
    root = certificate(ca.ca_file)
    for context in CONTEXTS:
        pair = ca.pair(tls.service_name(context))
        assert tls.service_name(context) in names(pair.cert)
        assert certificate(pair.cert).issuer == root.subject
    assert names(ca.pair("envoy").cert) == {"envoy"}
    assert {"gateway", "envoy-internal", "localhost"} <= names(ca.pair("gateway").cert)


def test_a_second_run_keeps_the_certificates_and_renews_one_close_to_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tls.ensure_tls(tmp_path / "tls", CONTEXTS)
    before = {p.name: p.read_bytes() for p in ca.directory.iterdir()}
    tls.ensure_tls(tmp_path / "tls", CONTEXTS)
    assert {p.name: p.read_bytes() for p in ca.directory.iterdir()} == before
    # 85 days on, the 90-day leaves are within a week of expiry; the 1-year CA is not
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=85)
    monkeypatch.setattr(tls, "_now", lambda: later)
    tls.ensure_tls(tmp_path / "tls", CONTEXTS)
    assert ca.ca_file.read_bytes() == before["ca.pem"]
    assert ca.pair("gateway").cert.read_bytes() != before["gateway.pem"]


def test_the_services_take_all_three_tls_files_or_none(tmp_path: Path) -> None:
    ca = tls.ensure_tls(tmp_path / "tls", ("order",))
    env = ca.service_env("order")
    assert TlsFiles.from_env(Env({})) is None
    assert TlsFiles.from_env(Env(env)) == TlsFiles(
        Path(env["PT_TLS_CERT_FILE"]), Path(env["PT_TLS_KEY_FILE"]), ca.ca_file
    )
    with pytest.raises(ConfigError, match="set without PT_TLS_CA_FILE"):
        TlsFiles.from_env(Env({k: v for k, v in env.items() if k != "PT_TLS_CA_FILE"}))
    with pytest.raises(ConfigError, match=r"PT_TLS_KEY_FILE=.* does not exist"):
        TlsFiles.from_env(Env(env | {"PT_TLS_KEY_FILE": str(tmp_path / "none.pem")}))


def test_make_run_turns_tls_on_with_pt_tls(tmp_path: Path) -> None:
    assert PlatformConfig.defaults(tmp_path, Env({"PT_TLS": "1"})).tls
    assert not PlatformConfig.defaults(tmp_path, Env({})).tls


def transport(item: dict[str, Any]) -> dict[str, Any] | None:
    socket = item.get("transport_socket")
    return socket["typed_config"] if socket else None


@pytest.mark.parametrize("fault", [False, True], ids=["plain", "fault-delay"])
def test_the_tls_gateway_config_passes_envoy_validation(tmp_path: Path, fault: bool) -> None:
    internal = InternalRouteSettings(
        fault_delay_s=0.5 if fault else 0.0, fault_delay_percent=50 if fault else 0
    )
    config = PlatformConfig.defaults(tmp_path, Env({"PT_TLS": "1"}))
    config.gateway = GatewaySettings(internal=internal)
    platform = Platform(config)
    rendered = tmp_path / "envoy.yaml"
    rendered.write_text(platform.render_envoy_config())
    assert_envoy_accepts(rendered)

    envoy = yaml.safe_load(rendered.read_text())["static_resources"]
    listeners = {item["name"]: transport(item["filter_chains"][0]) for item in envoy["listeners"]}
    assert listeners["gateway"]["@type"] == f"{TLS_SOCKET}.DownstreamTlsContext"
    assert "require_client_certificate" not in listeners["gateway"]
    internal_tls = listeners["internal"]
    assert internal_tls["require_client_certificate"] is True
    assert internal_tls["common_tls_context"]["validation_context"][
        "match_typed_subject_alt_names"
    ] == [{"san_type": "DNS", "matcher": {"exact": "manager-svc"}}]
    if fault:
        # Envoy's own loopback hop to the fault listener stays inside Envoy, in plaintext
        assert listeners["trainer_fault"] is None
    clusters = {c["name"]: transport(c) for c in envoy["clusters"]}
    expected = (
        {c: f"{c}-svc" for c in CONTEXTS}
        | ({"status_watch": "status-svc", "reflection": "order-svc"})
        | ({} if fault else {"trainer_internal": "trainer-svc"})
    )
    assert {name: t["sni"] for name, t in clusters.items() if t} == expected
