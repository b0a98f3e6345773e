"""Every item of a paged List call (AIP-158): follows ``next_page_token`` to the last page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

MAX_PAGE_SIZE = 100


def every_page(
    call: Callable[[Any], Any], request: Any, items: str, page_size: int = MAX_PAGE_SIZE
) -> Iterator[Any]:
    """The ``items`` field (e.g. ``"orders"``) of every page of ``call(request)``, in
    order. ``call`` takes the request (bind metadata and retries in it); ``request`` is
    copied, never changed."""
    page_request = type(request)()
    page_request.CopyFrom(request)
    page_request.page_size = page_size
    while True:
        page = call(page_request)
        yield from getattr(page, items)
        if not page.next_page_token:
            return
        page_request.page_token = page.next_page_token
