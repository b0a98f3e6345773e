"""Envoy's admin interface, on a Unix socket only its owner may open (mode 0600).

The admin can change the runtime (``/runtime_modify``: the rate limit off), log bearer
tokens (``/logging?level=debug``) and stop the gateway (``/quitquitquit``), so it is no
TCP port any local user or pod could reach. The launcher, the tests and ``ptctl`` talk
to it through :class:`EnvoyAdmin`; Prometheus reads ``/stats/prometheus`` through the
gateway's read-only stats listener (Kubernetes).
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ptkit.config import ConfigError

MAX_SOCKET_PATH = 100
"""sun_path holds 108 bytes on Linux; Envoy needs the path whole."""


def check_socket_path(path: Path) -> Path:
    """``path`` if a Unix socket can be bound there, else a one-line configuration error."""
    if len(str(path)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"Envoy's admin socket path {path} is longer than {MAX_SOCKET_PATH} characters;"
            " move the var directory (PT_VAR_DIR) or set PT_GATEWAY_ADMIN_SOCKET"
        )
    return path


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("envoy-admin", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


class EnvoyAdmin:
    """HTTP/1.1 requests to Envoy's admin over its Unix socket."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def request(self, method: str, path: str, timeout: float = 5.0) -> str:
        """The body of the admin's answer; OSError when Envoy is not there, or on a non-2xx."""
        connection = _UnixConnection(self.socket_path, timeout)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read().decode()
        except (http.client.HTTPException, ValueError) as error:
            raise OSError(f"Envoy's admin did not answer {method} {path}: {error}") from error
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise OSError(f"Envoy's admin answered {method} {path} with {response.status}")
        return body

    def get(self, path: str, timeout: float = 5.0) -> str:
        return self.request("GET", path, timeout)

    def post(self, path: str, timeout: float = 5.0) -> str:
        return self.request("POST", path, timeout)

    def stats(self, pattern: str) -> list[dict[str, Any]]:
        """``/stats?format=json`` entries whose name matches the regular expression."""
        answer: dict[str, Any] = json.loads(self.get(f"/stats?format=json&filter={quote(pattern)}"))
        stats: list[dict[str, Any]] = answer["stats"]
        return stats

    def healthy(self) -> bool:
        """Envoy is live and every upstream host passed its health check."""
        try:
            clusters = self.get("/clusters", timeout=0.5)
        except OSError:
            return False
        flags = [line for line in clusters.splitlines() if "::health_flags::" in line]
        return bool(flags) and all(line.endswith("::healthy") for line in flags)

    def host_flags(self, address: str) -> list[str]:
        """The health flags of upstream host ``address`` (``127.0.0.1:50051``), one entry
        per cluster it is in: ``healthy``, or e.g. ``/failed_active_hc``; [] when Envoy
        does not know it. OSError when Envoy is not there."""
        clusters = self.get("/clusters", timeout=0.5)
        suffix = f"::{address}::health_flags::"
        return [line.split(suffix, 1)[1] for line in clusters.splitlines() if suffix in line]
