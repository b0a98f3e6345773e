"""Idempotent creation (AIP-155): a create request carries a ``request_id``, and the same
request_id from the same caller returns what the first request created instead of
creating it twice. The created resource stores the request id (unique together with
the caller, empty stored as NULL), so a retry finds it, and two copies of the request
racing each other cannot both create: the loser's insert conflicts, and it answers
with the winner's resource.

A creation without a ``request_id`` that came through the gateway is keyed on the
gateway's request id (:func:`idempotency_key`): Envoy makes one per client request and
sends the same with each of its own retries, so a retry on another replica (the first
try lost to a crash or a freeze) creates nothing twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ptkit import correlation
from ptkit.domain import ConcurrencyConflict
from ptkit.ports import UnitOfWork
from ptkit.validation import is_request_id

T = TypeVar("T")


def idempotency_key(request_id: str) -> str:
    """The key of a creation: the client's ``request_id``, else the ``x-request-id`` the
    gateway gave this call (a UUID; anything else, or none, is no key: "")."""
    if request_id:
        return request_id
    call = correlation.current()
    gateway_id = call.request_id if call is not None else ""
    return gateway_id if is_request_id(gateway_id) else ""


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
