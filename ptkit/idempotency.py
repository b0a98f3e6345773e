"""Idempotent creation (AIP-155): a create request carries a ``request_id``, and the same
request_id from the same caller returns what the first request created instead of
creating it twice. The created resource stores the request id (unique together with
the caller, empty stored as NULL), so a retry finds it, and two copies of the request
racing each other cannot both create: the loser's insert conflicts, and it answers
with the winner's resource."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ptkit.domain import ConcurrencyConflict
from ptkit.ports import UnitOfWork

T = TypeVar("T")


async def create_once(
    uow: UnitOfWork,
    request_id: str,
    find: Callable[[], Awaitable[T | None]],
    create: Callable[[], Awaitable[T]],
) -> T:
    """What ``find`` returns for the request (created by an earlier copy of it), else
    what ``create`` makes and commits, both inside ``uow``. Without a request id (""),
    ``create`` alone. ``request_id`` must have been validated
    (:func:`ptkit.validation.require_request_id`)."""
    if not request_id:
        async with uow:
            return await create()
    async with uow:
        # created first, looked up only when that conflicts: a first request (the common
        # case) costs no lookup, and a retry finds what its earlier copy created
        try:
            return await create()
        except ConcurrencyConflict as conflict:
            lost_to = conflict  # an earlier or a racing copy of the request created it
    async with uow:
        existing = await find()
    if existing is None:
        raise lost_to
    return existing
