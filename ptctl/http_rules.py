"""The public API's HTTP rules (``google.api.http``), read from the descriptor set.

One reading serves everything that derives from the REST mapping: the OpenAPI document,
and the gateway's routes and checks in front of the transcoder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

_VERBS = ("get", "put", "post", "delete", "patch")
_PARAM = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=[^}]*)?\}")


@dataclass(frozen=True)
class HttpRule:
    """One REST binding of one RPC: ``POST /v1/orders/{order_id}:cancel`` -> CancelOrder."""

    service: str
    """Full service name, e.g. ``ptplatform.order.v1.OrderService``."""
    method: descriptor.MethodDescriptor
    verb: str
    """Upper case: GET, POST..."""
    path: str
    """The path template, e.g. ``/v1/orders/{order_id}:cancel``."""
    body: str
    """``*`` (the whole request but path fields), one field's name, or empty (no body)."""

    @property
    def rpc(self) -> str:
        return self.method.name

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.method.name}"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.path))

    @property
    def path_regex(self) -> str:
        """An RE2 regex matching the concrete paths of this template (one segment a variable)."""
        parts = _PARAM.split(self.path)
        literal = [re.escape(part) for part in parts[::2]]
        return "^" + "[^/]+".join(literal) + "$"

    @property
    def input(self) -> descriptor.Descriptor:
        return self.method.input_type

    @property
    def output(self) -> descriptor.Descriptor:
        return self.method.output_type


@dataclass(frozen=True)
class PublicApi:
    """The descriptor set's files, their pool, and the HTTP rules of the given services."""

    files: tuple[descriptor_pb2.FileDescriptorProto, ...]
    services: tuple[str, ...]

    @classmethod
    def load(cls, descriptor_set: Path, services: tuple[str, ...]) -> PublicApi:
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
        return cls(tuple(fds.file), services)

    @cached_property
    def pool(self) -> descriptor_pool.DescriptorPool:
        pool = descriptor_pool.DescriptorPool()
        for file in self.files:
            pool.Add(file)
        return pool

    @cached_property
    def rules(self) -> tuple[HttpRule, ...]:
        rules = []
        for service_name in self.services:
            service = self.pool.FindServiceByName(service_name)
            for method in service.methods:
                options = descriptor_pb2.MethodOptions.FromString(
                    method.GetOptions().SerializeToString()
                )
                if not options.HasExtension(annotations_pb2.http):
                    continue
                http = options.Extensions[annotations_pb2.http]
                for binding in (http, *http.additional_bindings):
                    verb = next(v for v in _VERBS if getattr(binding, v))
                    rules.append(
                        HttpRule(
                            service_name, method, verb.upper(), getattr(binding, verb), binding.body
                        )
                    )
        return tuple(rules)

    def paths(self) -> dict[str, list[HttpRule]]:
        """The rules by path template, in the order of the protos."""
        by_path: dict[str, list[HttpRule]] = {}
        for rule in self.rules:
            by_path.setdefault(rule.path, []).append(rule)
        return by_path
