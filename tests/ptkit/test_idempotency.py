"""The kit's idempotent creation: a copy of a request that raced the first and lost
answers with what the first created."""

from __future__ import annotations

import pytest

from ptkit import correlation
from ptkit.domain import ConcurrencyConflict
from ptkit.idempotency import create_once, idempotency_key
from ptkit.testing import FakeUnitOfWork

REQUEST = "6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13"


async def test_a_copy_that_lost_the_race_answers_with_the_winners_resource() -> None:
    stored: list[str] = []

    async def find() -> str | None:
        return stored[0] if stored else None

    async def create() -> str:
        stored.append("created by the other copy")  # committed meanwhile
        raise ConcurrencyConflict("unique constraint")

    assert await create_once(FakeUnitOfWork(), REQUEST, find, create) == stored[0]


async def test_a_conflict_that_is_not_the_same_request_is_raised() -> None:
    async def find() -> None:
        return None

    async def create() -> str:
        raise ConcurrencyConflict("something else")

    with pytest.raises(ConcurrencyConflict, match="something else"):
        await create_once(FakeUnitOfWork(), REQUEST, find, create)


async def test_without_request_id_nothing_is_looked_up() -> None:
    async def find() -> str:
        raise AssertionError("no request id, no lookup")

    async def create() -> str:
        return "new"

    assert await create_once(FakeUnitOfWork(), "", find, create) == "new"


async def test_a_first_request_is_created_without_a_lookup() -> None:
    async def find() -> str:
        raise AssertionError("a create that does not conflict looks nothing up")

    async def create() -> str:
        return "new"

    assert await create_once(FakeUnitOfWork(), REQUEST, find, create) == "new"


GATEWAY_ID = "0d4e2f6a-1b3c-4d5e-8f70-9a1b2c3d4e5f"


def test_a_creation_without_request_id_is_keyed_on_the_gateways_request_id() -> None:
    with correlation.bound(correlation.Correlation(request_id=GATEWAY_ID)):
        assert idempotency_key("") == GATEWAY_ID
        assert idempotency_key(REQUEST) == REQUEST


def test_no_gateway_id_or_one_that_is_not_a_uuid_is_no_key() -> None:
    assert idempotency_key("") == ""
    with correlation.bound(correlation.Correlation(request_id="not-a-uuid")):
        assert idempotency_key("") == ""
