"""The log scan finds what it must and nothing else; the services' log lines carry none."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ptctl.keys import ensure_keys
from ptkit.auth import Role
from ptkit.logs import JsonFormatter
from ptkit.tokens import mint_token
from tests.log_scan import tokens_in_logs


@pytest.fixture
def outside_the_run() -> Iterator[Path]:
    """A directory outside pytest's base temporary directory, which the session-end scan
    reads: the tokens planted here must not fail the run."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def test_a_token_in_any_log_is_found_without_repeating_it(outside_the_run: Path) -> None:
    tmp_path = outside_the_run
    token = mint_token(ensure_keys(tmp_path / "jwt"), Role.CUSTOMER, "alice")
    (tmp_path / "var" / "log").mkdir(parents=True)
    (tmp_path / "var" / "log" / "envoy.log").write_text('{"path": "/v1/orders"}\n')
    (tmp_path / "var" / "log" / "access").write_text(f'{{"path": "/v1/x?access_token={token}"}}\n')
    (tmp_path / "nats.log").write_text(f"line one\nAuthorization: Bearer {token}\n")
    (tmp_path / "jwt" / "notes.txt").write_text(token)  # not a log
    found = tokens_in_logs([tmp_path])
    assert {(f.path.name, f.line) for f in found} == {("access", 1), ("nats.log", 2)}
    assert all(token not in str(f) for f in found)


def test_a_service_log_line_never_carries_a_token(tmp_path: Path) -> None:
    token = mint_token(ensure_keys(tmp_path / "jwt"), Role.CUSTOMER, "alice")
    record = logging.LogRecord(
        "ptkit.server", logging.INFO, __file__, 1, "refused %s", (f"Bearer {token}",), None
    )
    record.authorization = token
    line = JsonFormatter().format(record)
    assert token not in line
    assert json.loads(line)["authorization"] == "[redacted token]"
