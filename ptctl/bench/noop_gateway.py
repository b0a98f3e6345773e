"""The no-op server behind a second Envoy configured exactly like the platform's.

The second Envoy is rendered by the platform's own :meth:`Platform.render_envoy_config`
(same gateway settings, JWT providers, transcoder, rate limit) with other ports and
every upstream endpoint on the no-op server.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from ptctl.envoy_admin import EnvoyAdmin
from ptctl.keys import private_directory, write_private
from ptctl.launcher import ManagedProcess, Platform, free_port, tcp_open, wait_ready


class NoopGateway:
    """A context manager that starts the no-op server and its Envoy, and stops both."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.var_dir = private_directory(platform.var_dir / "noop")
        self.port = free_port()
        gateway = platform.config.gateway
        self.settings = replace(
            gateway,
            gateway_port=free_port(),
            admin_socket=str(self.var_dir / "envoy-admin.sock"),
            stats_port=free_port() if gateway.stats_port else 0,
            internal=replace(gateway.internal, port=free_port(), fault_port=free_port()),
        )
        logs = platform.var_dir / "log"
        self.server = ManagedProcess(
            "noop",
            [sys.executable, "-m", "ptctl.bench.noop", "--port", str(self.port)],
            dict(os.environ),
            logs / "noop.log",
        )
        self.config_file = self.var_dir / "envoy.yaml"
        argv = list(platform.envoy.argv)
        argv[argv.index("-c") + 1] = str(self.config_file)
        self.envoy = ManagedProcess("noop-envoy", argv, dict(os.environ), logs / "noop-envoy.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.gateway_port}"

    def start(self, timeout: float = 30.0) -> None:
        endpoints = {
            context: [("127.0.0.1", self.port)] for context in self.platform.config.contexts
        }
        config = self.platform.render_envoy_config(endpoints, self.settings)
        write_private(self.config_file, config.encode())
        self.server.start()
        wait_ready(self.server, lambda: tcp_open(self.port), timeout)
        self.envoy.start()
        admin = EnvoyAdmin(self.var_dir / "envoy-admin.sock")
        wait_ready(self.envoy, admin.healthy, timeout)

    def stop(self) -> None:
        self.envoy.stop()
        self.server.stop()

    def __enter__(self) -> NoopGateway:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
