"""The ptplatform-client wheel (``make client``): what it carries, what it depends on, and
that code using it, installed, passes ``mypy --strict`` (and a type error is caught)."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ptctl.client_package import ROOT, build_wheel

EXAMPLE = ROOT / "clients" / "python" / "examples" / "quickstart.py"
MISTYPED = """
from ptplatform_client import Client

with Client("127.0.0.1:8080", token="t") as client:
    order = client.orders.get("o-1")
    total: int = order.order_id + 1
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client")
    return build_wheel(work / "dist", staging=work / "stage")


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel unpacked as pip installs it, into a directory of its own."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_wheel_carries_the_client_and_the_typed_stubs_of_the_public_api(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for context in ("order", "manager", "trainer", "status"):
        stub = f"ptplatform/{context}/v1/{context}_service_pb2"
        assert {f"{stub}.py", f"{stub}.pyi", f"{stub}_grpc.py", f"{stub}_grpc.pyi"} <= names
        assert f"ptplatform/{context}/v1/py.typed" in names
    assert {"ptplatform/py.typed", "ptplatform_client/py.typed", "ptplatform_client/client.py"} <= (
        names
    )
    assert not [name for name in names if name.startswith("ptplatform/events/")]


def test_the_wheel_depends_on_grpc_protobuf_and_googleapis_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata_file = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_file))
    assert metadata["Name"] == "ptplatform-client"
    required = {
        r.split(">")[0].split("<")[0].split("=")[0] for r in metadata.get_all("Requires-Dist")
    }
    assert required == {"grpcio", "grpcio-status", "googleapis-common-protos", "protobuf"}


def mypy_strict(installed: Path, source: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` of one file, as a user of the installed wheel runs it: from a
    directory of its own, the wheel on the interpreter's path, nothing of the repository's
    source tree in reach."""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("MYPYPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", source.name],
        cwd=source.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_example_passes_mypy_strict_against_the_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    example = tmp_path / EXAMPLE.name
    shutil.copy(EXAMPLE, example)
    checked = mypy_strict(installed, example)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mypy_strict_catches_a_type_error_in_code_using_the_client(
    installed: Path, tmp_path: Path
) -> None:
    """The stubs are real types, not Any: an order id is a str."""
    mistyped = tmp_path / "mistyped.py"
    mistyped.write_text(MISTYPED)
    checked = mypy_strict(installed, mistyped)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert 'Unsupported operand types for + ("str" and "int")' in checked.stdout
