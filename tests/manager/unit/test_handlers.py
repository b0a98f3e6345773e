"""manager_svc's RegisterTrainer and List use cases against the in-memory fakes:
idempotent registration (AIP-155) and pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from itertools import count

import pytest

from manager_svc.application import handlers
from ptkit.auth import Caller, Role
from ptkit.domain import InvalidValue
from ptkit.paging import PageTokens
from tests.manager.fakes import FakeManagerUnitOfWork as FakeUnitOfWork

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
MANAGER = Caller("m-1", Role.MANAGER)
REQUEST = "6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13"
TOKENS = PageTokens.development()


def numbered() -> Callable[[], str]:
    ids = count(1)
    return lambda: f"t-{next(ids)}"


async def register(
    uow: FakeUnitOfWork, new_id: Callable[[], str], request_id: str, caller: Caller = MANAGER
) -> str:
    command = handlers.RegisterTrainer("Kim", caller, request_id=request_id)
    return (await handlers.register_trainer(command, uow, new_id, lambda: NOW)).trainer_id


async def test_the_same_request_id_registers_the_trainer_once() -> None:
    uow, new_id = FakeUnitOfWork(), numbered()
    first = await register(uow, new_id, REQUEST)
    again = await register(uow, new_id, REQUEST.upper())
    assert first == again == "t-1"
    assert list(uow.trainers.rows) == ["t-1"]
    assert uow.trainers.rows["t-1"].registered_by == "m-1"


async def test_the_same_request_id_of_another_manager_registers_another_trainer() -> None:
    uow, new_id = FakeUnitOfWork(), numbered()
    await register(uow, new_id, REQUEST)
    other = await register(uow, new_id, REQUEST, Caller("m-2", Role.MANAGER))
    assert other == "t-2"


async def test_without_request_id_every_call_registers() -> None:
    uow, new_id = FakeUnitOfWork(), numbered()
    assert [await register(uow, new_id, ""), await register(uow, new_id, "")] == ["t-1", "t-2"]


@pytest.mark.parametrize("request_id", ["r-1", REQUEST[:-1], REQUEST + "0", " " + REQUEST])
async def test_a_request_id_that_is_not_a_uuid_is_refused(request_id: str) -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidValue) as refused:
        await register(uow, numbered(), request_id)
    assert refused.value.field == "request_id"
    assert uow.trainers.rows == {}


async def test_the_roster_pages_by_name() -> None:
    uow, new_id = FakeUnitOfWork(), numbered()
    for name in ["Park", "Kim", "Lee", "Choi", "Han"]:
        await handlers.register_trainer(handlers.RegisterTrainer(name, MANAGER), uow, new_id)
    names, token = [], ""
    while True:
        query = handlers.ListTrainers(MANAGER, page_size=2, page_token=token)
        page = await handlers.list_trainers(query, uow, TOKENS)
        assert len(page.items) <= 2
        names += [t.name for t in page.items]
        if not (token := page.next_page_token):
            break
    assert names == ["Choi", "Han", "Kim", "Lee", "Park"]


async def test_an_assignments_token_is_bound_to_its_filters() -> None:
    uow = FakeUnitOfWork()
    for n in range(3):
        await handlers.open_assignment_on_order_placed(
            handlers.OrderPlaced(f"o-{n}", "c-1", "Pilates", None), uow
        )
    first = await handlers.list_assignments(
        handlers.ListAssignments(None, "", MANAGER, page_size=1), uow, TOKENS
    )
    assert first.next_page_token
    with pytest.raises(InvalidValue) as refused:
        await handlers.list_assignments(
            handlers.ListAssignments(None, REQUEST, MANAGER, page_token=first.next_page_token),
            uow,
            TOKENS,
        )
    assert refused.value.field == "page_token"
