"""The OpenAPI 3.1 document of the HTTP/JSON API, generated from the descriptor set.

Every ``google.api.http`` rule (``ptctl.http_rules``) becomes an operation; every message
it reaches becomes a schema, written as Envoy's transcoder speaks JSON (proto3 JSON mapping
with the proto field names: int64 as a string, enums by name, Timestamp as an RFC 3339
string). ``google.api.field_behavior`` gives ``required`` and ``readOnly``,
``google.api.field_info`` the ``uuid`` format, and the protos' comments the descriptions.

No package on the registries reads our descriptor set into OpenAPI 3.1 for us (the
grpc-gateway generator is a Go protoc plugin writing Swagger 2.0), so it is this module.
``python -m ptctl.openapi DESCRIPTOR OUT`` writes it (``make openapi``); the output is
deterministic: the same protos give the same bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api import field_behavior_pb2, field_info_pb2
from google.protobuf import descriptor, descriptor_pb2

from ptctl.http_rules import HttpRule, PublicApi

OPENAPI_VERSION = "3.1.0"
TITLE = "PtPlatform API"
VERSION = "v1"

Json = dict[str, Any]
FieldType = descriptor.FieldDescriptor

_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**32 - 1}
# proto3 JSON writes 64-bit integers as strings (JavaScript numbers lose precision).
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64 = {"type": "string", "format": "int64", "pattern": "^[0-9]+$"}
_SCALARS: dict[int, Json] = {
    FieldType.TYPE_STRING: {"type": "string"},
    FieldType.TYPE_BOOL: {"type": "boolean"},
    FieldType.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldType.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldType.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldType.TYPE_INT32: _INT32,
    FieldType.TYPE_SINT32: _INT32,
    FieldType.TYPE_SFIXED32: _INT32,
    FieldType.TYPE_UINT32: _UINT32,
    FieldType.TYPE_FIXED32: _UINT32,
    FieldType.TYPE_INT64: _INT64,
    FieldType.TYPE_SINT64: _INT64,
    FieldType.TYPE_SFIXED64: _INT64,
    FieldType.TYPE_UINT64: _UINT64,
    FieldType.TYPE_FIXED64: _UINT64,
}
# The well-known types have a JSON form of their own (proto3 JSON mapping).
_WELL_KNOWN: dict[str, Json] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
    },
    **{
        f"google.protobuf.{name}Value": {**schema, "type": [schema["type"], "null"]}
        for name, schema in {
            "String": _SCALARS[FieldType.TYPE_STRING],
            "Bool": _SCALARS[FieldType.TYPE_BOOL],
            "Bytes": _SCALARS[FieldType.TYPE_BYTES],
            "Double": _SCALARS[FieldType.TYPE_DOUBLE],
            "Float": _SCALARS[FieldType.TYPE_FLOAT],
            "Int32": _INT32,
            "UInt32": _UINT32,
            "Int64": _INT64,
            "UInt64": _UINT64,
        }.items()
    },
}

STATUS = "google.rpc.Status"
ERROR_DETAILS = ("google.rpc.ErrorInfo", "google.rpc.BadRequest")

# What each documented error status means at this gateway: the services' gRPC codes as
# the transcoder maps them (convert_grpc_status), and the replies Envoy makes itself.
ERRORS: dict[str, str] = {
    "400": "INVALID_ARGUMENT or FAILED_PRECONDITION: the request is wrong, or the resource "
    "is not in a state that allows it. Not worth retrying unchanged.",
    "401": "UNAUTHENTICATED: no bearer token, or one that is expired or not trusted.",
    "403": "PERMISSION_DENIED: the caller's role or subject may not do this.",
    "404": "NOT_FOUND: no such resource (or no such route).",
    "409": "ABORTED: a concurrent change won; retry the request.",
    "413": "The request body is larger than the gateway accepts.",
    "429": "RESOURCE_EXHAUSTED: the rate limit; retry after a pause.",
    "503": "UNAVAILABLE: the service is down or overloaded; retry with backoff.",
    "504": "DEADLINE_EXCEEDED: the service did not answer in time.",
}


@dataclass
class _Comments:
    """Leading comments of the descriptor set's declarations, by full name."""

    by_name: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, files: tuple[descriptor_pb2.FileDescriptorProto, ...]) -> _Comments:
        comments = cls()
        for file in files:
            located = {
                tuple(location.path): location.leading_comments
                for location in file.source_code_info.location
                if location.leading_comments
            }
            for name, path in _declarations(file):
                text = located.get(path, "")
                if text:
                    comments.by_name[name] = " ".join(text.split())
        return comments

    def __call__(self, full_name: str) -> str:
        return self.by_name.get(full_name, "")


def _declarations(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[str, tuple]]:
    """(full name, source path) of every service, method, message, field, enum and value."""
    package = file.package

    def enum(e: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple) -> Iterator:
        yield f"{scope}.{e.name}", path
        for k, value in enumerate(e.value):
            yield f"{scope}.{e.name}.{value.name}", (*path, 2, k)

    def message(m: descriptor_pb2.DescriptorProto, scope: str, path: tuple) -> Iterator:
        name = f"{scope}.{m.name}"
        yield name, path
        for k, f in enumerate(m.field):
            yield f"{name}.{f.name}", (*path, 2, k)
        for k, nested in enumerate(m.nested_type):
            yield from message(nested, name, (*path, 3, k))
        for k, e in enumerate(m.enum_type):
            yield from enum(e, name, (*path, 4, k))

    for i, m in enumerate(file.message_type):
        yield from message(m, package, (4, i))
    for i, e in enumerate(file.enum_type):
        yield from enum(e, package, (5, i))
    for i, s in enumerate(file.service):
        yield f"{package}.{s.name}", (6, i)
        for k, method in enumerate(s.method):
            yield f"{package}.{s.name}.{method.name}", (6, i, 2, k)


def _field_options(f: descriptor.FieldDescriptor) -> descriptor_pb2.FieldOptions:
    # Re-parsed so the google.api extensions (imported above) are read, whichever pool.
    return descriptor_pb2.FieldOptions.FromString(f.GetOptions().SerializeToString())


def _behaviors(f: descriptor.FieldDescriptor) -> set[int]:
    return set(_field_options(f).Extensions[field_behavior_pb2.field_behavior])


def _is_uuid(f: descriptor.FieldDescriptor) -> bool:
    options = _field_options(f)
    return (
        options.HasExtension(field_info_pb2.field_info)
        and options.Extensions[field_info_pb2.field_info].format == field_info_pb2.FieldInfo.UUID4
    )


def _is_map(f: descriptor.FieldDescriptor) -> bool:
    return f.is_repeated and f.message_type is not None and f.message_type.GetOptions().map_entry


class OpenApiBuilder:
    """Builds the document; ``schemas`` collects every message and enum a rule reaches."""

    def __init__(self, api: PublicApi) -> None:
        self.api = api
        self.comment = _Comments.of(api.files)
        self.schemas: dict[str, Json] = {}
        self.messages: dict[str, descriptor.Descriptor] = {}
        self.inputs: set[str] = set()
        """Messages a request carries: their fields are required only when REQUIRED."""
        self._in_request = False

    # -- schemas -------------------------------------------------------------------------

    def ref(self, full_name: str) -> Json:
        return {"$ref": f"#/components/schemas/{full_name}"}

    def type_schema(self, f: descriptor.FieldDescriptor) -> Json:
        """The schema of one value of the field (an item, for a repeated field)."""
        if f.type == FieldType.TYPE_ENUM:
            self.add_enum(f.enum_type)
            return self.ref(f.enum_type.full_name)
        if f.type in (FieldType.TYPE_MESSAGE, FieldType.TYPE_GROUP):
            name = f.message_type.full_name
            if name in _WELL_KNOWN:
                return dict(_WELL_KNOWN[name])
            self.add_message(f.message_type)
            return self.ref(name)
        schema = dict(_SCALARS[f.type])
        if _is_uuid(f):
            schema["format"] = "uuid"
        return schema

    def field_schema(self, f: descriptor.FieldDescriptor) -> Json:
        if _is_map(f):
            value = f.message_type.fields_by_name["value"]
            schema: Json = {"type": "object", "additionalProperties": self.type_schema(value)}
        elif f.is_repeated:
            schema = {"type": "array", "items": self.type_schema(f)}
        else:
            schema = self.type_schema(f)
        # OpenAPI 3.1 keeps keywords beside a $ref, so a message field keeps its own words.
        text = self.comment(f.full_name)
        if text:
            schema["description"] = text
        if field_behavior_pb2.OUTPUT_ONLY in _behaviors(f):
            schema["readOnly"] = True
        return schema

    def object_schema(
        self, message: descriptor.Descriptor, leave_out: tuple[str, ...] = ()
    ) -> Json:
        properties = {
            f.name: self.field_schema(f) for f in message.fields if f.name not in leave_out
        }
        required = [
            f.name
            for f in message.fields
            if f.name not in leave_out and field_behavior_pb2.REQUIRED in _behaviors(f)
        ]
        schema: Json = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        text = self.comment(message.full_name)
        if text:
            schema["description"] = text
        return schema

    def add_message(self, message: descriptor.Descriptor) -> None:
        name = message.full_name
        if name in self.schemas:
            return
        self.schemas[name] = {}  # reserved first: a message may reach itself
        self.messages[name] = message
        if self._in_request:
            self.inputs.add(name)
        self.schemas[name] = self.object_schema(message)

    def mark_always_printed(self) -> None:
        """In a response, the transcoder prints every field without presence (scalars,
        enums, lists, maps: ``always_print_primitive_fields``), so those are required there.
        Messages and proto3 ``optional`` fields appear only when set."""
        for name, message in self.messages.items():
            if not name.startswith("ptplatform.") or name in self.inputs:
                continue
            printed = [
                f.name
                for f in message.fields
                if (f.is_repeated or f.message_type is None) and not f.has_presence
            ]
            required = self.schemas[name].get("required", [])
            self.schemas[name]["required"] = [*required, *(f for f in printed if f not in required)]

    def add_enum(self, enum: descriptor.EnumDescriptor) -> None:
        values = [value.name for value in enum.values]
        schema: Json = {"type": "string", "enum": values}
        text = self.comment(enum.full_name)
        if text:
            schema["description"] = text
        self.schemas[enum.full_name] = schema

    def add_status(self) -> None:
        """google.rpc.Status as the transcoder writes it, details with their ``@type``."""
        for name in ERROR_DETAILS:
            self.add_message(self.api.pool.FindMessageTypeByName(name))
        detail = {
            "description": "An error detail: google.rpc.ErrorInfo (reason, domain, metadata) "
            "or google.rpc.BadRequest (field_violations), named by its @type.",
            "anyOf": [
                {
                    "allOf": [self.ref(name)],
                    "properties": {
                        "@type": {"const": f"type.googleapis.com/{name}"},
                    },
                    "required": ["@type"],
                }
                for name in ERROR_DETAILS
            ]
            + [_WELL_KNOWN["google.protobuf.Any"]],
        }
        self.schemas[STATUS] = {
            "type": "object",
            "description": "An error (AIP-193): the gRPC code, a message for developers, "
            "and details for programs. Errors the gateway makes itself carry no details.",
            "required": ["code", "message"],
            "properties": {
                "code": {**_INT32, "description": "The gRPC status code."},
                "message": {"type": "string"},
                "details": {"type": "array", "items": detail},
            },
        }

    # -- operations ----------------------------------------------------------------------

    def parameter(self, name: str, f: descriptor.FieldDescriptor, where: str) -> Json:
        schema = self.field_schema(f)
        description = schema.pop("description", "")
        parameter: Json = {"name": name, "in": where, "schema": schema}
        if where == "path" or field_behavior_pb2.REQUIRED in _behaviors(f):
            parameter["required"] = True
        if description:
            parameter["description"] = description
        return parameter

    def query_parameters(
        self, message: descriptor.Descriptor, leave_out: tuple[str, ...], prefix: str = ""
    ) -> Iterator[Json]:
        """The request's fields as query parameters, nested messages by dotted names."""
        for f in message.fields:
            name = prefix + f.name
            if name in leave_out:
                continue
            nested = f.message_type
            if nested is not None and nested.full_name not in _WELL_KNOWN and not _is_map(f):
                if not f.is_repeated:
                    yield from self.query_parameters(nested, leave_out, f"{name}.")
                continue
            yield self.parameter(name, f, "query")

    def path_field(self, message: descriptor.Descriptor, dotted: str) -> FieldType:
        *parents, last = dotted.split(".")
        for part in parents:
            message = message.fields_by_name[part].message_type
        return message.fields_by_name[last]

    def operation(self, rule: HttpRule, operation_id: str) -> Json:
        service = rule.service.rsplit(".", 1)[-1]
        parameters = [
            self.parameter(name, self.path_field(rule.input, name), "path")
            for name in rule.path_params
        ]
        operation: Json = {"operationId": operation_id, "tags": [service]}
        text = self.comment(rule.method.full_name)
        if text:
            operation["description"] = text
        self._in_request = True
        if rule.body == "*":
            body = self.object_schema(rule.input, rule.path_params)
            body.pop("description", None)
            operation["requestBody"] = _json_body(body, required=True)
        elif rule.body:
            operation["requestBody"] = _json_body(
                self.field_schema(rule.input.fields_by_name[rule.body]), required=True
            )
            parameters += self.query_parameters(rule.input, (*rule.path_params, rule.body))
        else:
            parameters += self.query_parameters(rule.input, rule.path_params)
        self._in_request = False
        if parameters:
            operation["parameters"] = parameters
        self.add_message(rule.output)
        operation["responses"] = {
            "200": {
                "description": self.comment(rule.output.full_name) or rule.output.name,
                **_json_content(self.ref(rule.output.full_name)),
            },
            **{code: {"$ref": f"#/components/responses/{code}"} for code in ERRORS},
        }
        return operation

    def document(self) -> Json:
        paths: dict[str, Json] = {}
        seen: dict[str, int] = {}
        for rule in self.api.rules:
            count = seen.get(rule.rpc, 0)
            seen[rule.rpc] = count + 1
            operation_id = rule.rpc if count == 0 else f"{rule.rpc}{count + 1}"
            path = paths.setdefault(_openapi_path(rule), {})
            path[rule.verb.lower()] = self.operation(rule, operation_id)
        self.mark_always_printed()
        self.add_status()
        tags = []
        for service in self.api.services:
            tag: Json = {"name": service.rsplit(".", 1)[-1]}
            text = self.comment(service)
            tag["description"] = f"{text} (gRPC: {service})" if text else f"gRPC: {service}"
            tags.append(tag)
        return {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": TITLE,
                "version": VERSION,
                "description": "The HTTP/JSON face of the platform's gRPC services, "
                "transcoded by the gateway. Every call needs `Authorization: Bearer <JWT>` "
                "(`ptctl token --role customer|manager|trainer --subject ID`). Fields use "
                "the protos' names; 64-bit integers are strings, enums are names, times "
                "are RFC 3339. Errors are google.rpc.Status.",
            },
            "servers": [{"url": "/"}],
            "security": [{"bearer": []}],
            "tags": tags,
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
                "responses": {
                    code: {"description": text, **_json_content(self.ref(STATUS))}
                    for code, text in ERRORS.items()
                },
                "schemas": dict(sorted(self.schemas.items())),
            },
        }


def _json_content(schema: Json) -> Json:
    return {"content": {"application/json": {"schema": schema}}}


def _json_body(schema: Json, required: bool) -> Json:
    return {"required": required, **_json_content(schema)}


def _openapi_path(rule: HttpRule) -> str:
    """``/v1/{name=orders/*}:cancel`` -> ``/v1/{name}:cancel``."""
    path = rule.path
    for name in rule.path_params:
        start = path.index("{" + name)
        path = path[:start] + "{" + name + "}" + path[path.index("}", start) + 1 :]
    return path


def public_services(descriptor_set: Path) -> tuple[str, ...]:
    """Every service of our protos (packages ``ptplatform.*``), in the descriptor's order."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    return tuple(
        f"{file.package}.{service.name}"
        for file in files
        if file.package.startswith("ptplatform.")
        for service in file.service
    )


def build(descriptor_set: Path, services: tuple[str, ...] | None = None) -> Json:
    api = PublicApi.load(descriptor_set, services or public_services(descriptor_set))
    return OpenApiBuilder(api).document()


def dumps(document: Json) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    descriptor_set, out = Path(argv[0]), Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(build(descriptor_set)))


if __name__ == "__main__":
    main(sys.argv[1:])
