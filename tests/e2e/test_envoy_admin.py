"""Envoy's admin: a Unix socket of mode 0600 (no TCP port another local user could reach),
answered through ``ptctl.envoy_admin``; the stats listener (Kubernetes) exposes only
``/ready`` and ``/stats/prometheus``, read-only."""

from __future__ import annotations

import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ptctl.envoy import GatewaySettings
from ptctl.launcher import Platform
from tests.conftest import fresh_platform


@pytest.fixture(scope="module")
def with_stats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    var_dir: Path = tmp_path_factory.mktemp("envoy-admin")
    gateway = GatewaySettings(stats_port=1)  # any non-zero: the launcher picks a free port
    with fresh_platform(var_dir, contexts=["order"], gateway=gateway) as platform:
        yield platform


def http_status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_admin_is_a_unix_socket_only_its_owner_may_open(with_stats: Platform) -> None:
    mode = with_stats.admin_socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    config = yaml.safe_load(with_stats.envoy_config.read_text())
    assert "socket_address" not in config["admin"]["address"], "no TCP admin port"
    assert with_stats.admin.get("/ready").strip() == "LIVE"
    assert with_stats.admin.healthy()


def test_the_stats_listener_serves_prometheus_and_nothing_that_changes_state(
    with_stats: Platform,
) -> None:
    stats = f"http://127.0.0.1:{with_stats.config.gateway.stats_port}"
    with urllib.request.urlopen(f"{stats}/stats/prometheus", timeout=5) as response:
        assert "envoy_cluster_upstream_rq" in response.read().decode()
    assert http_status(f"{stats}/ready") == 200
    for path in ("/quitquitquit", "/runtime_modify?rate_limit_enforced=0", "/logging?level=debug"):
        assert http_status(f"{stats}{path}", "POST") == 404, path
    assert with_stats.envoy.running


def test_the_public_port_does_not_reach_the_admin(with_stats: Platform) -> None:
    for path in ("/stats/prometheus", "/ready", "/quitquitquit"):
        assert http_status(f"{with_stats.gateway_url}{path}") in (401, 404), path
    assert with_stats.envoy.running
