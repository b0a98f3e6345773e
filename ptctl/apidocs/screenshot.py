"""``python -m ptctl.apidocs.screenshot OUT.png`` (``make docs-screenshot``): /docs of a
throw-away platform (free ports, a temporary directory) as headless Chromium shows it."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from ptctl.apidocs.browser import docs_page
from ptctl.launcher import ROOT, Platform, PlatformConfig

OPENAPI = ROOT / "build" / "openapi.json"


def operation_count(document: dict) -> int:
    return sum(len(item) for item in document["paths"].values())


def screenshot(out: Path) -> None:
    operations = operation_count(json.loads(OPENAPI.read_text()))
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as var_dir,
        Platform(PlatformConfig.ephemeral(Path(var_dir))) as platform,
        docs_page(f"{platform.gateway_url}/docs", operations) as page,
    ):
        # the operations, without the schemas below them
        page.set_viewport_size({"width": 1280, "height": 1640})
        page.screenshot(path=str(out))


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]))
