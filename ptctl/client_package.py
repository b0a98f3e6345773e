"""``make client``: the wheel of the typed Python client, ptplatform-client.

The package directory (clients/python) holds the client module; the generated stubs of
the public API (``ptplatform.<context>.v1``: ``*_pb2.py``, ``*_pb2_grpc.py`` and their
mypy-protobuf ``.pyi`` files) are staged beside it with a ``py.typed`` marker in every
directory, and pip builds the wheel offline (no build isolation: setuptools is in the
virtualenv). The event envelopes are internal to the platform and stay out.

Run by the Makefile: ``python -m ptctl.client_package OUT_DIR``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERNAL = ("events", "public_api.py")
"""Generated code that is no part of the public API: the bus's envelopes, reflection's list."""


def stage(root: Path, staging: Path) -> Path:
    """The package directory with the generated stubs, ready to build."""
    shutil.rmtree(staging, ignore_errors=True)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(root / "clients" / "python", staging, ignore=junk)
    generated = staging / "ptplatform"
    shutil.copytree(root / "ptplatform", generated, ignore=shutil.ignore_patterns(*INTERNAL))
    for directory in [generated, *(p for p in generated.rglob("*") if p.is_dir())]:
        if directory.name != "__pycache__":
            (directory / "py.typed").touch()
    return staging


def build_wheel(out_dir: Path, root: Path = ROOT, staging: Path | None = None) -> Path:
    """Builds ptplatform_client-*.whl into ``out_dir``; returns its path."""
    staged = stage(root, staging or root / "build" / "client")
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("ptplatform_client-*.whl"))
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(out_dir), str(staged)),
        ],
        check=True,
    )
    built = sorted(set(out_dir.glob("ptplatform_client-*.whl")) - before) or sorted(before)
    return max(built, key=lambda path: path.stat().st_mtime)


if __name__ == "__main__":
    print(build_wheel(Path(sys.argv[1])))
