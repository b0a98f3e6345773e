"""Configuration read once from the environment, validated, with a one-line error.

Each service's ``main.py`` builds its settings with :class:`Env`; a bad value raises
:class:`ConfigError` naming the variable, and :func:`exit_on_config_error` turns it into
a one-line message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable is missing or invalid."""


class Env:
    """Typed access to environment variables, each with a default."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self._environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is invalid: expected {expected}") from None

    def str(self, name: str, default: str) -> str:
        return self._parse(name, default, str, "a string")

    def int(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        value = self._parse(name, default, int, "an integer")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={value} is out of range [{minimum}, {maximum}]")
        return value

    def port(self, name: str, default: int) -> int:
        return self.int(name, default, minimum=0, maximum=65535)

    def float(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._parse(name, default, float, "a number")
        if value < minimum:
            raise ConfigError(f"{name}={value} must be >= {minimum}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)

        return self._parse(name, default, parse, "true or false")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(f"{name}={value!r} is invalid: expected one of {', '.join(choices)}")
        return value

    def path(self, name: str, default: Path) -> Path:
        return self._parse(name, default, Path, "a path")

    def database_url(self, name: str, default: str) -> str:
        value = self.str(name, default)
        if not value.startswith(("sqlite", "postgresql")):
            raise ConfigError(f"{name}={value!r} is invalid: expected a sqlite or postgresql URL")
        return value


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Stop the process with a one-line error (exit 2) when configuration is bad."""
    try:
        yield
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
