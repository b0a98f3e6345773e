"""Requests whose bytes do not parse, told to the caller instead of crashing the call.

protobuf refuses a message whose string field holds bytes that are not UTF-8 (Envoy's
transcoder passes ``GET /v1/orders/%ff`` on as such a message), but its DecodeError does
not say which field. :func:`invalid_utf8_path` walks the wire format with the message's
descriptor, nested messages included, and names the field; :func:`tolerant` makes a
request deserializer answer an :class:`Undecodable` instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from ptkit.domain import InvalidValue

MAX_DEPTH = 100
"""protobuf's own recursion limit for nested messages."""

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class MalformedWire(ValueError):
    """The bytes are not a protobuf message at all (truncated, bad tag, too deep)."""


@dataclass(frozen=True)
class Undecodable:
    """A request that could not be parsed; the call is refused with ``error``."""

    error: InvalidValue


def tolerant(
    deserializer: Callable[[bytes], Any], descriptor: Descriptor | None
) -> Callable[[bytes], Any]:
    """``deserializer``, answering :class:`Undecodable` where it would raise DecodeError."""

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return Undecodable(refusal_of(descriptor, data))

    return deserialize


def refusal_of(descriptor: Descriptor | None, data: bytes) -> InvalidValue:
    """Why ``data`` is not a request of type ``descriptor``: a field that is not UTF-8,
    else malformed bytes."""
    try:
        path = invalid_utf8_path(descriptor, data) if descriptor is not None else None
    except MalformedWire:
        path = None
    if path is not None:
        return InvalidValue(
            f"{path} is not valid UTF-8: text fields take UTF-8 encoded Unicode",
            reason="INVALID_UTF8",
            field=path,
        )
    name = descriptor.full_name if descriptor is not None else "request"
    return InvalidValue(f"the request is not a valid {name} message", reason="MALFORMED_REQUEST")


def invalid_utf8_path(descriptor: Descriptor, data: bytes) -> str | None:
    """The path (``parent.child[2].name``) of the first string field of ``data`` that is
    not UTF-8, or None if every one is. Raises MalformedWire on bytes that are no message."""
    return _walk(descriptor, memoryview(data), "", 0)


def _walk(descriptor: Descriptor, data: memoryview, prefix: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        raise MalformedWire("nested too deep")
    seen: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise MalformedWire("field number 0")
        if wire_type == _VARINT:
            _, pos = _varint(data, pos)
        elif wire_type in (_I64, _I32):
            pos += 8 if wire_type == _I64 else 4
        elif wire_type == _LEN:
            length, pos = _varint(data, pos)
            chunk, pos = data[pos : pos + length], pos + length
            if pos > len(data):
                raise MalformedWire("truncated")
            field = descriptor.fields_by_number.get(number)
            if field is not None:
                found = _check(field, chunk, _path(prefix, field, seen), depth)
                if found is not None:
                    return found
        else:
            raise MalformedWire(f"wire type {wire_type}")
    if pos > len(data):
        raise MalformedWire("truncated")
    return None


def _check(field: FieldDescriptor, chunk: memoryview, path: str, depth: int) -> str | None:
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            str(chunk, "utf-8")
        except UnicodeDecodeError:
            return path
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        found = _walk(field.message_type, chunk, path, depth + 1)
        if found is not None and field.message_type.GetOptions().map_entry:
            return path.rpartition("[")[0]  # a map is named as a whole
        return found
    return None


def _path(prefix: str, field: FieldDescriptor, seen: dict[int, int]) -> str:
    name = f"{prefix}.{field.name}" if prefix else field.name
    if not field.is_repeated:
        return name
    index = seen.get(field.number, 0)
    seen[field.number] = index + 1
    return f"{name}[{index}]"


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            break
    raise MalformedWire("bad varint")
