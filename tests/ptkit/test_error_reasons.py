"""The table of reasons in docs/gateway.md lists every ErrorInfo reason the code can
answer with, and nothing else."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

from ptkit.domain import DomainError
from ptkit.grpc_errors import code_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ptkit", "order_svc", "manager_svc", "trainer_svc", "status_svc")
REASON = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


def documented() -> dict[str, str]:
    """reason -> gRPC code, from the table under '### Reasons' of '## Errors'."""
    text = (ROOT / "docs" / "gateway.md").read_text()
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n### Reasons\n", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([A-Z_]+) \|", table, flags=re.MULTILINE)
    assert len(rows) == len({reason for reason, _ in rows}), "a reason is listed twice"
    return dict(rows)


def error_classes() -> Iterator[type[DomainError]]:
    for package in PACKAGES:
        for module in pkgutil.walk_packages([str(ROOT / package)], f"{package}."):
            # __main__ starts the service, alembic runs the migration scripts
            if not {"__main__", "migrations"} & set(module.name.split(".")):
                importlib.import_module(module.name)
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PACKAGES:
            yield cls


def class_reasons() -> dict[str, str]:
    """The default reason of every error class a status code is mapped for."""
    found = {}
    for cls in error_classes():
        code = code_for(cls)
        if code is not None:
            found[cls.default_reason] = code.name
    return found


def literal_reasons() -> dict[str, str]:
    """Every ``reason="..."`` an error is raised with in the kit and the services, with
    the code of the error class it is given to."""
    classes = {cls.__name__: cls for cls in error_classes()}
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "reason"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                        and REASON.fullmatch(value.value)
                    ):
                        name = ast.unparse(node.func).rsplit(".", 1)[-1]
                        assert name in classes, f"{path}: reason= given to {name}"
                        code = code_for(classes[name])
                        found[value.value] = code.name if code else "none"
    return found


def test_every_reason_the_code_can_answer_with_is_documented_with_its_code() -> None:
    table = documented()
    answered = {**class_reasons(), **literal_reasons()}
    missing = answered.keys() - table.keys()
    assert not missing, f"reasons missing from docs/gateway.md ## Errors: {sorted(missing)}"
    wrong = {reason: code for reason, code in answered.items() if table[reason] != code}
    assert not wrong, f"documented with another code than the code answers: {wrong}"


def test_the_table_lists_no_reason_the_code_cannot_answer_with() -> None:
    extra = documented().keys() - class_reasons().keys() - literal_reasons().keys()
    assert not extra, f"docs/gateway.md lists reasons nothing raises: {sorted(extra)}"


def test_reasons_are_upper_snake_case() -> None:
    for reason in class_reasons().keys() | literal_reasons().keys():
        assert REASON.fullmatch(reason), reason
