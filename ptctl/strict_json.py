"""The strict-input filter's Lua source: ``envoy/strict_json.lua`` plus the schema it
checks, rendered from the descriptor set.

Per REST route (verb and path of a ``google.api.http`` rule): the request message, the
fields the URL binds, the query parameters it may carry; per message: each field's JSON
names (proto name and lowerCamel json_name) and its JSON type. See ADR 0008.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ptctl import gateway_errors
from ptctl.http_rules import HttpRule, PublicApi

LUA_SOURCE = Path(__file__).resolve().parent.parent / "envoy" / "strict_json.lua"
MAX_DEPTH = 32
"""Deepest JSON nesting a body may have (our messages nest two levels)."""
QUERY_DEPTH = 3

_T = FieldDescriptor
_KINDS = {
    _T.TYPE_STRING: "string",
    _T.TYPE_BYTES: "bytes",
    _T.TYPE_BOOL: "bool",
    _T.TYPE_ENUM: "enum",
    _T.TYPE_DOUBLE: "float",
    _T.TYPE_FLOAT: "float",
    **dict.fromkeys(
        (
            _T.TYPE_INT32,
            _T.TYPE_INT64,
            _T.TYPE_UINT32,
            _T.TYPE_UINT64,
            _T.TYPE_SINT32,
            _T.TYPE_SINT64,
            _T.TYPE_FIXED32,
            _T.TYPE_FIXED64,
            _T.TYPE_SFIXED32,
            _T.TYPE_SFIXED64,
        ),
        "int",
    ),
}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": "string",
    "google.protobuf.Duration": "string",
    "google.protobuf.FieldMask": "string",
    "google.protobuf.Struct": "struct",
    "google.protobuf.Any": "struct",
    "google.protobuf.ListValue": "list",
    "google.protobuf.Value": "any",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.DoubleValue": "float",
    "google.protobuf.FloatValue": "float",
    **dict.fromkeys(
        (
            "google.protobuf.Int32Value",
            "google.protobuf.Int64Value",
            "google.protobuf.UInt32Value",
            "google.protobuf.UInt64Value",
        ),
        "int",
    ),
}


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_url_bytes: int


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _kind(field: FieldDescriptor) -> tuple[str, str | None]:
    """The JSON kind of one value of the field, and its message's name if it is checked."""
    if field.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            return _WELL_KNOWN[name], None
        return "message", name
    return _KINDS[field.type], None


def field_spec(field: FieldDescriptor) -> dict[str, Any]:
    if _is_map(field):
        value = field.message_type.fields_by_name["value"]
        kind, message = _kind(value)
        return {"kind": "map", "map": _without_none({"kind": kind, "message": message})}
    kind, message = _kind(field)
    spec = {"kind": kind, "message": message}
    if field.is_repeated:
        spec["repeated"] = True
    return _without_none(spec)


def _without_none(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if v is not None}


def messages(roots: list[Descriptor]) -> dict[str, dict[str, Any]]:
    """Every message reachable from the roots: its fields' specs and JSON names."""
    found: dict[str, dict[str, Any]] = {}
    pending = list(roots)
    while pending:
        message = pending.pop()
        if message.full_name in found:
            continue
        names: dict[str, str] = {}
        fields = {}
        for field in message.fields:
            names[field.name] = field.name
            names[field.json_name] = field.name
            fields[field.name] = field_spec(field)
            nested = field.message_type
            if _is_map(field):
                nested = field.message_type.fields_by_name["value"].message_type
            if nested is not None and nested.full_name not in _WELL_KNOWN:
                pending.append(nested)
        found[message.full_name] = {"names": names, "fields": fields}
    return found


def query_parameters(rule: HttpRule) -> dict[str, dict[str, Any]]:
    """The query parameters a rule takes: every leaf field neither the path nor the body
    binds (none with ``body: "*"``), dotted for nested messages."""
    if rule.body == "*":
        return {}
    bound = {param.split(".")[0] for param in rule.path_params} | {rule.body}
    params: dict[str, dict[str, Any]] = {}

    def walk(message: Descriptor, prefix: str, depth: int) -> None:
        for field in message.fields:
            if not prefix and field.name in bound:
                continue
            _, nested = _kind(field)
            if _is_map(field):
                continue
            if nested is not None:
                if depth < QUERY_DEPTH:
                    walk(field.message_type, f"{prefix}{field.name}.", depth + 1)
                continue
            spec = {"repeated": True} if field.is_repeated else {}
            for name in dict.fromkeys((field.name, field.json_name)):
                params[prefix + name] = spec

    walk(rule.input, "", 1)
    return params


def literal(path: str) -> str:
    """The template without its variables: the longer, the more specific."""
    return re.sub(r"\{[^}]*\}", "", path)


def lua_pattern(rule: HttpRule) -> str:
    """A Lua pattern matching the concrete paths of the rule's template."""
    parts = re.split(r"\{[^}]*\}", rule.path)
    literal = ["".join(c if c.isalnum() else f"%{c}" for c in part) for part in parts]
    return "^" + "[^/]+".join(literal) + "$"


def routes(api: PublicApi) -> list[dict[str, Any]]:
    """One entry per rule, the most literal path first (``…:cancel`` before ``{id}``)."""
    rules = sorted(api.rules, key=lambda rule: -len(literal(rule.path)))
    entries = []
    for rule in rules:
        entry: dict[str, Any] = {
            "method": rule.verb,
            "pattern": lua_pattern(rule),
            "template": rule.path,
            "body": rule.body,
            "message": rule.input.full_name,
            "path_fields": {param.split(".")[0]: True for param in rule.path_params},
            "query": query_parameters(rule),
        }
        if rule.body not in ("", "*"):
            entry["body_field"] = field_spec(rule.input.fields_by_name[rule.body])
        entries.append(entry)
    return entries


def lua_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = "".join(
            c if c.isascii() and c.isprintable() and c not in '"\\' else f"\\{ord(c):03d}"
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, list | tuple):
        return "{ " + ", ".join(lua_literal(v) for v in value) + " }"
    raise TypeError(f"no Lua literal for {value!r}")


def render_lua(api: PublicApi, limits: Limits) -> str:
    """The filter's whole source: the rendered tables, then ``envoy/strict_json.lua``."""
    api_routes = routes(api)
    tables = {
        "ROUTES": api_routes,
        "MESSAGES": messages([rule.input for rule in api.rules]),
        "LIMITS": {
            "max_body_bytes": limits.max_body_bytes,
            "max_url_bytes": limits.max_url_bytes,
            "max_depth": MAX_DEPTH,
            "domain": gateway_errors.DOMAIN,
            "field_violations": gateway_errors.FIELD_VIOLATIONS,
            "metadata_namespace": gateway_errors.METADATA_NAMESPACE,
        },
        "ERRORS": {
            error.reason: {"status": error.status, "code": error.code}
            for error in gateway_errors.STRICT_INPUT
        },
    }
    header = "-- Rendered by ptctl/strict_json.py from the descriptor set: do not edit.\n"
    rendered = "".join(f"{name} = {lua_literal(value)}\n" for name, value in tables.items())
    return header + rendered + LUA_SOURCE.read_text()
