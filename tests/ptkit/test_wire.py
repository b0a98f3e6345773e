"""Naming the field of a request whose bytes protobuf refuses (ptkit/wire.py)."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2, status_pb2

from ptkit.wire import (
    MAX_DEPTH,
    MalformedWire,
    Undecodable,
    invalid_utf8_path,
    refusal_of,
    tolerant,
)
from ptplatform.order.v1 import order_service_pb2 as pb

MARK = "\x01MARK"
"""A placeholder whose bytes are replaced by the same number of non-UTF-8 bytes."""


def spoiled(message: object) -> bytes:
    data = message.SerializeToString()  # type: ignore[attr-defined]
    assert data.count(MARK.encode()) == 1
    return data.replace(MARK.encode(), b"\xff\xfeAR\xc3")


def test_a_top_level_string_field_is_named() -> None:
    data = spoiled(pb.GetOrderRequest(order_id=MARK))
    assert invalid_utf8_path(pb.GetOrderRequest.DESCRIPTOR, data) == "order_id"


def test_the_field_is_found_among_valid_fields_of_every_wire_type() -> None:
    request = pb.ListOrdersRequest(customer_id="alice", page_size=7, page_token=MARK)
    data = spoiled(request)
    assert invalid_utf8_path(pb.ListOrdersRequest.DESCRIPTOR, data) == "page_token"


def test_a_nested_field_is_named_with_its_path_and_the_index_of_a_repeated_one() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="ok", description="fine"),
            error_details_pb2.BadRequest.FieldViolation(field="ok", description=MARK),
        ]
    )
    data = spoiled(bad)
    path = invalid_utf8_path(error_details_pb2.BadRequest.DESCRIPTOR, data)
    assert path == "field_violations[1].description"


def test_a_map_is_named_as_a_whole() -> None:
    info = error_details_pb2.ErrorInfo(reason="R", metadata={"a": "1", "b": MARK})
    data = spoiled(info)
    assert invalid_utf8_path(error_details_pb2.ErrorInfo.DESCRIPTOR, data) == "metadata"


def test_bytes_fields_and_any_payloads_may_hold_any_bytes() -> None:
    status = status_pb2.Status(code=3, message="m")
    status.details.add(type_url="type.googleapis.com/x", value=b"\xff\xfe")
    data = status.SerializeToString()
    assert invalid_utf8_path(status_pb2.Status.DESCRIPTOR, data) is None


def test_a_valid_message_has_no_bad_field() -> None:
    data = pb.PlaceOrderRequest(customer_name="김민수", class_name="Pilates").SerializeToString()
    assert invalid_utf8_path(pb.PlaceOrderRequest.DESCRIPTOR, data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05ab",  # length beyond the end
        b"\x0a",  # a tag without its value
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a varint that never ends
        b"\x0b",  # wire type 3 (groups are not proto3)
        b"\x02\x00",  # field number 0
    ],
)
def test_bytes_that_are_no_message_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedWire):
        invalid_utf8_path(pb.GetOrderRequest.DESCRIPTOR, data)


def test_nesting_deeper_than_protobuf_allows_is_malformed() -> None:
    data = b"\x0a\x01x"  # name: "x"
    for _ in range(MAX_DEPTH + 5):
        data = b"\x1a" + _varint(len(data)) + data  # nested_type: [<data>]
    with pytest.raises(MalformedWire):
        invalid_utf8_path(descriptor_pb2.DescriptorProto.DESCRIPTOR, data)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def test_the_refusal_names_the_field_and_says_what_text_fields_take() -> None:
    error = refusal_of(pb.GetOrderRequest.DESCRIPTOR, spoiled(pb.GetOrderRequest(order_id=MARK)))
    assert (error.reason, error.field) == ("INVALID_UTF8", "order_id")
    assert str(error) == "order_id is not valid UTF-8: text fields take UTF-8 encoded Unicode"


def test_malformed_bytes_are_refused_without_a_field() -> None:
    error = refusal_of(pb.GetOrderRequest.DESCRIPTOR, b"\x0a\x05ab")
    assert (error.reason, error.field) == ("MALFORMED_REQUEST", None)
    assert "ptplatform.order.v1.GetOrderRequest" in str(error)


def test_a_tolerant_deserializer_answers_undecodable_instead_of_raising() -> None:
    deserialize = tolerant(pb.GetOrderRequest.FromString, pb.GetOrderRequest.DESCRIPTOR)
    good = pb.GetOrderRequest(order_id="o-1")
    assert deserialize(good.SerializeToString()) == good
    bad = deserialize(spoiled(pb.GetOrderRequest(order_id=MARK)))
    assert isinstance(bad, Undecodable)
    assert bad.error.field == "order_id"
