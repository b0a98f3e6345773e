"""The API reference page (``/docs``): Swagger UI's static files, vendored at build time.

``python -m ptctl.apidocs OUT_DIR`` (``make openapi``) copies Swagger UI from the
``swagger-ui-py`` wheel (PyPI) next to our ``index.html``, so the gateway serves every file
itself (``ptctl.envoy.API_DOCS``): no CDN, nothing fetched at run time.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

INDEX = "index.html"
# Swagger UI's files the page loads, from the wheel's static/ folder.
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE")


def swagger_ui_static() -> Path:
    return Path(str(resources.files("swagger_ui") / "static"))


def vendor(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    static = swagger_ui_static()
    for name in SWAGGER_UI_FILES:
        shutil.copyfile(static / name, out_dir / name)
    shutil.copyfile(Path(__file__).with_name(INDEX), out_dir / INDEX)
