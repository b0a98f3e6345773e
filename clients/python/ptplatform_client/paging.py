"""Every item of a List method, page after page (AIP-158): the request goes out again with
the previous answer's next_page_token until a page comes back without one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


P = TypeVar("P", bound=Page)


def items(fetch: Callable[[str], P], of: Callable[[P], Iterable[T]]) -> Iterator[T]:
    """The items ``of`` each page ``fetch(page_token)`` returns, lazily: a page is asked
    for only when the previous one is used up."""
    token: str | None = ""
    while token is not None:
        page = fetch(token)
        yield from of(page)
        token = next_token(page, token)


def next_token(page: Page, token: str) -> str | None:
    """The token of the page after ``page`` (asked for with ``token``); None after the last.
    A token the server returns twice in a row would never end the list, and is refused."""
    if not page.next_page_token:
        return None
    if page.next_page_token == token:
        raise RuntimeError(f"the server returned page token {token!r} twice in a row")
    return page.next_page_token
