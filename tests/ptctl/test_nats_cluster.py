"""The nats-servers' configurations: a single server, or three with routes to each other."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ptctl.launcher import PlatformConfig, binary
from ptctl.nats_cluster import (
    SYNC_INTERVAL,
    local_nodes,
    render_node_config,
    route_secret,
    sync_interval,
)
from ptkit.config import ConfigError, Env


def test_a_cluster_has_one_or_three_servers() -> None:
    assert [n.port for n in local_nodes(1, 14222, 16222)] == [14222]
    three = local_nodes(3, 14222, 16222)
    assert [(n.port, n.cluster_port) for n in three] == [
        (14222, 16222),
        (14223, 16223),
        (14224, 16224),
    ]
    with pytest.raises(ConfigError, match="1 or 3"):
        PlatformConfig(var_dir=Path("var"), nats_cluster=2)


def test_each_server_routes_to_the_others_with_the_secret_and_syncs_before_acking(
    tmp_path: Path,
) -> None:
    nodes = local_nodes(3, 14222, 16222)
    secret = route_secret(tmp_path)
    assert route_secret(tmp_path) == secret, "made once, then kept"
    assert (tmp_path / "route.secret").stat().st_mode & 0o077 == 0
    config = render_node_config(nodes[1], nodes, tmp_path / "store", "", secret)
    assert f"sync_interval: {SYNC_INTERVAL}" in config
    assert f"route:{secret}@127.0.0.1:16222" in config
    assert f"route:{secret}@127.0.0.1:16224" in config
    assert "127.0.0.1:16223" not in config.split("routes:")[1], "no route to itself"


@pytest.mark.parametrize("count", [1, 3])
def test_nats_server_accepts_every_configuration(tmp_path: Path, count: int) -> None:
    nodes = local_nodes(count, 14222, 16222)
    config = tmp_path / "nats.conf"
    config.write_text(render_node_config(nodes[0], nodes, tmp_path / "store", "", "s3cret"))
    checked = subprocess.run(
        [binary("nats-server"), "-t", "-c", str(config)], capture_output=True, text=True, timeout=20
    )
    assert checked.returncode == 0, checked.stderr


def test_the_sync_interval_is_always_unless_a_duration_is_set() -> None:
    assert sync_interval(Env({})) == "always"
    assert sync_interval(Env({"PT_NATS_SYNC_INTERVAL": "10s"})) == "10s"
    with pytest.raises(ConfigError, match="PT_NATS_SYNC_INTERVAL"):
        sync_interval(Env({"PT_NATS_SYNC_INTERVAL": "sometimes"}))
