"""The studio web console's files, as the gateway serves them at ``/console/``.

The console (``clients/console/``: HTML, CSS and JavaScript modules, no build step) is a
client of the public HTTP/JSON API like any other. ``python -m ptctl.console OUT_DIR``
(``make console``) copies its files beside the descriptor set, as ``make openapi`` does
the API reference, so Envoy answers each from a file there (a direct response per file,
routes from :func:`pages`), under ``make run`` and in the Kubernetes image alike.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "clients" / "console"
FOLDER = "console"
"""The copy's folder beside the descriptor set."""
PREFIX = "/console/"
DEV_SIGN_IN_PATH = PREFIX + "dev/sign-in"
"""The development sign-in (ptctl/dev_sign_in.py), routed only under ``make run``."""
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Only the console's own files run, and they talk only to the gateway that served them."""

HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
"""Sent with every console file."""


def served_files(folder: Path) -> list[Path]:
    """The files of ``folder`` the gateway serves: those of a known type, by name."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix in CONTENT_TYPES
    )


def pages(listed: Path, served: Path) -> list[dict[str, object]]:
    """The console's routes: ``/console/<name>`` for each file found in ``listed``,
    answered from the same name in ``served`` (another machine's path, for Kubernetes),
    and ``/console/`` for the index. Empty when the console was not built."""
    routes: list[dict[str, object]] = []
    for path in served_files(listed):
        paths = [PREFIX + path.name] + ([PREFIX] if path.name == INDEX else [])
        routes += [
            {
                "path": url,
                "file": str(served / path.name),
                "content_type": CONTENT_TYPES[path.suffix],
                "headers": HEADERS,
            }
            for url in paths
        ]
    return routes


def copy(out_dir: Path, source: Path = SOURCE) -> None:
    """Replace ``out_dir`` with the served files of ``source``."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    for path in served_files(source):
        shutil.copyfile(path, out_dir / path.name)


if __name__ == "__main__":
    copy(Path(sys.argv[1]))
