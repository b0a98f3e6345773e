"""Finds bearer tokens in the logs a test run left behind.

Every log the fixtures write lives under pytest's base temporary directory: each
platform's ``<var>/log/*.log`` (the services, nats-server, Envoy and its access log) and
the ``*.log`` files of single servers. ``pytest_sessionfinish`` in ``tests/conftest.py``
scans them all and fails the run on a JWT-shaped string.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ptkit.tokens import JWT_SHAPE


@dataclass(frozen=True)
class TokenInLog:
    path: Path
    line: int
    token_start: str
    """The token's first characters only: the report must not leak it either."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.token_start}... (a bearer token)"


def log_files(roots: Iterable[Path]) -> Iterator[Path]:
    """``*.log`` files and every file in a ``log`` directory under ``roots``."""
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                if path.suffix == ".log" or path.parent.name == "log":
                    yield path


def tokens_in_logs(roots: Iterable[Path]) -> list[TokenInLog]:
    found = []
    for path in sorted(set(log_files(roots))):
        with path.open(errors="replace") as lines:
            for number, text in enumerate(lines, start=1):
                found += [
                    TokenInLog(path, number, m.group()[:12]) for m in JWT_SHAPE.finditer(text)
                ]
    return found
