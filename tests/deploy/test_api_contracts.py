"""Contract tests of the public protos: ``buf lint`` and ``buf breaking`` against the
committed baseline (contracts/ptplatform.binpb, rewritten by `make contracts-baseline`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import google.api.annotations_pb2
import pytest

from ptctl.launcher import ROOT, binary

BASELINE = Path("contracts") / "ptplatform.binpb"
WORKSPACE = ("buf.yaml", "protos", "third_party", str(BASELINE))
GOOGLEAPIS = ROOT / "third_party" / "googleapis"

ORDER_PROTO = "protos/ptplatform/order/v1/order_service.proto"
TRAINER_PROTO = "protos/ptplatform/trainer/v1/trainer_service.proto"
EVENTS_PROTO = "protos/ptplatform/events/v1/events.proto"


def buf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("buf"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def breaking(cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return buf("breaking", "protos", "--against", str(BASELINE), "--error-format", "json", cwd=cwd)


def violated_rules(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {json.loads(line)["type"] for line in result.stdout.splitlines() if line.strip()}


def edit(path: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    def apply(workspace: Path) -> None:
        file = workspace / path
        before = file.read_text()
        after = change(before)
        assert after != before, f"the fixture change did not apply to {path}"
        file.write_text(after)

    return apply


def copy_workspace(tmp_path: Path) -> Path:
    for name in WORKSPACE:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return tmp_path


def test_public_protos_pass_buf_lint() -> None:
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_protos_are_compatible_with_the_committed_baseline() -> None:
    result = breaking()
    assert result.returncode == 0, (
        result.stdout
        + result.stderr
        + "\nA deliberate break? Announce it and run `make contracts-baseline`."
    )


BREAKING_CHANGES = {
    "renamed field": (
        edit(
            ORDER_PROTO, lambda t: t.replace("string class_name = 4;", "string course_name = 4;", 1)
        ),
        "FIELD_SAME_NAME",
    ),
    "removed method": (
        edit(
            TRAINER_PROTO,
            lambda t: re.sub(r"  rpc CancelSchedule\(.*?\n  }\n", "", t, count=1, flags=re.S),
        ),
        "RPC_NO_DELETE",
    ),
    "changed field type of an event": (
        edit(
            EVENTS_PROTO,
            lambda t: t.replace("int32 duration_minutes = 4;", "int64 duration_minutes = 4;"),
        ),
        "FIELD_SAME_TYPE",
    ),
    "renumbered enum value": (
        edit(
            ORDER_PROTO,
            lambda t: t.replace("ORDER_STATUS_CANCELLED = 4;", "ORDER_STATUS_CANCELLED = 5;"),
        ),
        "ENUM_VALUE_NO_DELETE",
    ),
}


@pytest.mark.parametrize("change", BREAKING_CHANGES, ids=str)
def test_breaking_change_to_the_public_protos_is_refused(tmp_path: Path, change: str) -> None:
    apply, rule = BREAKING_CHANGES[change]
    workspace = copy_workspace(tmp_path)
    apply(workspace)
    result = breaking(workspace)
    assert result.returncode != 0, result.stdout + result.stderr
    assert rule in violated_rules(result), result.stdout + result.stderr


def test_adding_a_field_is_not_a_breaking_change(tmp_path: Path) -> None:
    workspace = copy_workspace(tmp_path)
    edit(
        ORDER_PROTO,
        lambda t: t.replace("  int64 version = 10", "  string room = 99;\n  int64 version = 10"),
    )(workspace)
    result = breaking(workspace)
    assert result.returncode == 0, result.stdout + result.stderr


VENDORED = ("annotations", "http", "field_behavior", "field_info", "resource")


@pytest.mark.parametrize("name", [f"{name}.proto" for name in VENDORED])
def test_vendored_google_api_protos_equal_the_ones_protoc_compiles_against(name: str) -> None:
    wheel = Path(google.api.annotations_pb2.__file__).parent
    assert (GOOGLEAPIS / "google" / "api" / name).read_bytes() == (wheel / name).read_bytes()
