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
    for only when the previous one is used up. A token the server returns twice in a row
    would never end the list, and is refused."""
    token = ""
    while True:
        page = fetch(token)
        yield from of(page)
        if not page.next_page_token:
            return
        if page.next_page_token == token:
            raise RuntimeError(f"the server returned page token {token!r} twice in a row")
        token = page.next_page_token
