"""Generate Python/gRPC code and Envoy's descriptor set from ``protos/``.

Run by the Makefile: ``python -m ptkit.protogen PROTO_ROOT OUT_DIR DESCRIPTOR``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc


def include_paths() -> list[str]:
    """protoc include paths: grpcio-tools' google/protobuf and googleapis' google/api."""
    well_known = resources.files("grpc_tools") / "_proto"
    import google.api.annotations_pb2 as annotations

    googleapis = Path(annotations.__file__).parent.parent.parent
    return [str(well_known), str(googleapis)]


def generate(proto_root: Path, out_dir: Path, descriptor: Path) -> None:
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    args = ["protoc", f"-I{proto_root}", *(f"-I{p}" for p in include_paths())]
    code = protoc.main(
        [
            *args,
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--descriptor_set_out={descriptor}",
            "--include_imports",
            "--include_source_info",
            *protos,
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
