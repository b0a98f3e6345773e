"""Pages of a list (AIP-132/158): the page size, the stable order and the opaque token
that names the next page. Pure Python: the application layer opens a page request, a
repository reads ``size + 1`` items in the :class:`Keyset` order after the request's
position (``ptkit.sql_paging`` for SQL, :func:`page_in_memory` for fakes), and the
application closes the page, which gives the ``next_page_token``.

A page token is the keyset position after the last item of its page, signed with
HMAC-SHA256 together with the collection and the request's filters (after the access
rules resolved them, so a filter implied by the caller's identity is bound too). The
key comes from configuration (``PT_PAGE_TOKEN_SECRET``), so every replica of a service
accepts the tokens of the others. A token that was altered, truncated, or is reused
with other filters or on another collection is refused with :class:`InvalidValue`
naming ``page_token``; nothing else is ever raised for a token, whatever its bytes.
``page_size`` 0 is the default (20); above the maximum (100) it is coerced to the
maximum (AIP-158); a negative one is refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ptkit.domain import InvalidValue

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_LENGTH = 1024
"""No token this module issues is longer; a longer one is refused before it is read."""

DEVELOPMENT_SECRET = "ptplatform-development-page-tokens"
"""The key of ``make run`` and the tests; production sets ``PT_PAGE_TOKEN_SECRET``."""

_VERSION = 1
_MAC_BYTES = 16
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")

Scalar = str | int | None
Filters = Mapping[str, Scalar]


@dataclass(frozen=True)
class SortKey:
    """One attribute (and column) of a collection's order. ``kind`` is ``str``, ``int``
    or ``datetime``; a ``nullable`` key sorts its None values last, either direction."""

    name: str
    kind: type = str
    descending: bool = False
    nullable: bool = False

    def encode(self, value: Any) -> Scalar:
        if value is None:
            return None
        if self.kind is datetime:
            moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return moment.astimezone(UTC).isoformat()
        return value  # type: ignore[no-any-return]

    def decode(self, value: object) -> Any:
        """A value read back from a token: of the key's kind, or InvalidValue."""
        if value is None and self.nullable:
            return None
        if self.kind is datetime and isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise _invalid("its position is not a time") from None
            if moment.tzinfo is None:
                raise _invalid("its position is not a time")
            return moment.astimezone(UTC)
        if self.kind is int and type(value) is int:
            return value
        if self.kind is str and isinstance(value, str):
            return value
        raise _invalid("its position does not fit this list")


class Keyset:
    """The stable order of one collection: sort keys whose last one (or all together)
    is unique, so every item has one place and a page starts exactly after the last
    item of the previous one."""

    def __init__(self, collection: str, *keys: SortKey) -> None:
        if not keys:
            raise ValueError("a keyset needs at least one sort key")
        self.collection = collection
        self.keys = keys

    def position_of(self, item: object) -> tuple[Any, ...]:
        """The values of the sort keys of an item (by attribute)."""
        return tuple(getattr(item, key.name) for key in self.keys)

    def compare(self, left: tuple[Any, ...], right: tuple[Any, ...]) -> int:
        """-1, 0 or 1: whether ``left`` comes before, with or after ``right``."""
        for key, a, b in zip(self.keys, left, right, strict=True):
            if a == b:
                continue
            if a is None:
                return 1  # nulls last
            if b is None:
                return -1
            before = a < b
            return (1 if before else -1) if key.descending else (-1 if before else 1)
        return 0


@dataclass(frozen=True)
class PageRequest:
    """What a repository reads: ``size`` items in ``keyset`` order after ``after``
    (None: from the start), plus one to tell whether a next page exists."""

    keyset: Keyset
    size: int
    after: tuple[Any, ...] | None = None
    binding: str = field(default="", repr=False)
    """The digest of the collection and filters the next token is bound to."""

    @property
    def limit(self) -> int:
        """How many items to read: one more than the page holds."""
        return self.size + 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
    """"" on the last page."""


def page_size_of(page_size: int) -> int:
    """0 is the default size; more than the maximum is the maximum (AIP-158)."""
    if page_size < 0:
        raise InvalidValue(f"page_size must not be negative, got {page_size}", field="page_size")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _invalid(why: str) -> InvalidValue:
    return InvalidValue(
        f"page_token is invalid ({why}); pass the next_page_token of the previous page "
        "with the same filters, or no page_token for the first page",
        field="page_token",
    )


def _digest(collection: str, filters: Filters) -> str:
    canonical = json.dumps([collection, sorted(filters.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class PageTokens:
    """Opens page requests from ``page_size``/``page_token`` and closes pages into their
    ``next_page_token``, signed with a key derived from ``secret``. Replicas that share
    the secret accept each other's tokens."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the page token secret must not be empty")
        self._key = hashlib.sha256(b"ptplatform page tokens\0" + secret.encode()).digest()

    @classmethod
    def development(cls) -> PageTokens:
        return cls(DEVELOPMENT_SECRET)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def request(
        self, keyset: Keyset, page_size: int, page_token: str, **filters: Scalar
    ) -> PageRequest:
        """The page a List request asks for; ``filters`` are the ones the query applies
        (after the access rules), which a token must have been issued for."""
        size = page_size_of(page_size)
        binding = _digest(keyset.collection, filters)
        after = self._position(keyset, binding, page_token) if page_token else None
        return PageRequest(keyset, size, after, binding)

    def page(self, request: PageRequest, found: Iterable[T]) -> Page[T]:
        """The page of ``found`` (what the repository read, at most ``limit`` items)."""
        items = list(found)
        if len(items) <= request.size:
            return Page(items, "")
        items = items[: request.size]
        position = request.keyset.position_of(items[-1])
        values = [
            key.encode(value) for key, value in zip(request.keyset.keys, position, strict=True)
        ]
        payload = json.dumps(
            [_VERSION, request.keyset.collection, request.binding, values],
            separators=(",", ":"),
        ).encode()
        return Page(items, _encoded(payload + self._mac(payload)))

    def _position(self, keyset: Keyset, binding: str, token: str) -> tuple[Any, ...]:
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_CHARACTERS.fullmatch(token):
            raise _invalid("not a token this API issued")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _invalid("not a token this API issued") from None
        if _encoded(raw) != token:  # the unused bits of the last character were edited
            raise _invalid("altered or truncated")
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise _invalid("altered or truncated")
        # signed by this platform: the payload is one this module wrote, read defensively
        try:
            version, collection, bound_to, values = json.loads(payload)
        except (ValueError, TypeError):
            raise _invalid("not a token this API issued") from None
        if version != _VERSION or collection != keyset.collection:
            raise _invalid("issued for another list")
        if bound_to != binding:
            raise _invalid("issued for a request with other filters")
        if not isinstance(values, list) or len(values) != len(keyset.keys):
            raise _invalid("its position does not fit this list")
        return tuple(key.decode(value) for key, value in zip(keyset.keys, values, strict=True))


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def page_in_memory(items: Iterable[T], request: PageRequest) -> list[T]:
    """What a repository reads for ``request``, over items in memory (for fakes): in
    keyset order, after the request's position, at most ``request.limit``."""
    keyset = request.keyset
    order: Callable[[T, T], int] = lambda a, b: keyset.compare(  # noqa: E731
        keyset.position_of(a), keyset.position_of(b)
    )
    ordered = sorted(items, key=functools.cmp_to_key(order))
    if request.after is not None:
        after = request.after
        ordered = [i for i in ordered if keyset.compare(keyset.position_of(i), after) > 0]
    return ordered[: request.limit]
