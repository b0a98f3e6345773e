"""The kit's pages (AIP-158): size coerced to the maximum, tokens bound to the list and its
filters, and a token that is not one the platform issued refused as INVALID_ARGUMENT
naming ``page_token``, whatever its bytes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptkit.domain import InvalidValue
from ptkit.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Keyset,
    PageRequest,
    PageTokens,
    SortKey,
    page_in_memory,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ITEMS = Keyset("items", SortKey("at", datetime, descending=True), SortKey("key"))
TOKENS = PageTokens("test secret")


@dataclass(frozen=True)
class Item:
    key: str
    at: datetime | None


def items(n: int) -> list[Item]:
    return [Item(f"i-{k:03d}", T0 + timedelta(minutes=k // 3)) for k in range(n)]


def read_all(stored: list[Item], size: int, tokens: PageTokens = TOKENS) -> list[list[Item]]:
    pages, token = [], ""
    while True:
        request = tokens.request(ITEMS, size, token, owner="alice")
        page = tokens.page(request, page_in_memory(stored, request))
        pages.append(page.items)
        token = page.next_page_token
        if not token:
            return pages


def a_token(**filters: str | None) -> str:
    request = TOKENS.request(ITEMS, 2, "", **(filters or {"owner": "alice"}))
    token = TOKENS.page(request, page_in_memory(items(5), request)).next_page_token
    assert token
    return token


def refused(token: str, **filters: str | None) -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        TOKENS.request(ITEMS, 2, token, **(filters or {"owner": "alice"}))
    assert caught.value.field == "page_token"
    assert "page_token" in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("asked", "given_size"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (101, MAX_PAGE_SIZE)],
)
def test_page_size_has_a_default_and_is_coerced_to_the_maximum(asked: int, given_size: int) -> None:
    assert TOKENS.request(ITEMS, asked, "").size == given_size
    assert TOKENS.request(ITEMS, 2**31 - 1, "").size == MAX_PAGE_SIZE


def test_a_negative_page_size_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidValue) as caught:
        TOKENS.request(ITEMS, -1, "")
    assert caught.value.field == "page_size"


def test_pages_hold_every_item_once_in_the_stable_order() -> None:
    stored = items(250)
    pages = read_all(stored, 100)
    assert [len(page) for page in pages] == [100, 100, 50]
    expected = sorted(stored, key=lambda i: (-i.at.timestamp(), i.key))  # type: ignore[union-attr]
    assert [i for page in pages for i in page] == expected


def test_an_exact_multiple_ends_without_an_empty_page() -> None:
    assert [len(page) for page in read_all(items(6), 3)] == [3, 3]


def test_null_keys_sort_last() -> None:
    keyset = Keyset(
        "items", SortKey("at", datetime, descending=True, nullable=True), SortKey("key")
    )
    stored = [Item("a", None), Item("b", T0), Item("c", None), Item("d", T0 + timedelta(1))]
    seen, token = [], ""
    while True:
        request = TOKENS.request(keyset, 1, token)
        page = TOKENS.page(request, page_in_memory(stored, request))
        seen += [i.key for i in page.items]
        if not (token := page.next_page_token):
            break
    assert seen == ["d", "b", "a", "c"]


def test_another_replica_with_the_same_secret_reads_the_token() -> None:
    token = a_token()
    request = PageTokens("test secret").request(ITEMS, 2, token, owner="alice")
    assert request.after == (T0 + timedelta(minutes=1), "i-004")  # newest first


def test_a_token_of_another_secret_is_refused() -> None:
    token = a_token()
    with pytest.raises(InvalidValue, match="altered"):
        PageTokens("another secret").request(ITEMS, 2, token, owner="alice")


def test_a_token_reused_with_other_filters_is_refused() -> None:
    token = a_token(owner="alice")
    assert "other filters" in str(refused(token, owner="bob"))
    assert "other filters" in str(refused(token, owner=None))
    assert "other filters" in str(refused(token, owner="alice", status="PLACED"))


def test_a_token_of_another_list_is_refused() -> None:
    token = a_token()
    other = Keyset("others", *ITEMS.keys)
    with pytest.raises(InvalidValue, match="another list") as caught:
        TOKENS.request(other, 2, token, owner="alice")
    assert caught.value.field == "page_token"


def test_a_changed_character_is_refused() -> None:
    token = a_token()
    for at in range(len(token)):
        flipped = "A" if token[at] != "A" else "B"
        changed = token[:at] + flipped + token[at + 1 :]
        refused(changed)


@pytest.mark.parametrize("size", range(1, 9))
def test_an_edit_of_the_unused_bits_of_the_last_character_is_refused(size: int) -> None:
    """Base64 without padding leaves bits of the last character unused: changing them
    decodes to the same bytes, and is still an edit."""
    stored = [Item("k" * size, T0), Item("other", T0)]
    request = TOKENS.request(ITEMS, 1, "", owner="alice")
    token = TOKENS.page(request, page_in_memory(stored, request)).next_page_token
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for character in alphabet:
        if character != token[-1]:
            refused(token[:-1] + character)


def test_a_truncated_or_extended_token_is_refused() -> None:
    token = a_token()
    for end in range(len(token)):
        refused(token[:end] or "x")
    refused(token + "A")
    refused(token + "=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "%%%",
        "é",
        "\x00",
        "A" * 5000,
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),
        base64.urlsafe_b64encode(json.dumps([1, "items", "x", ["a", "b"]]).encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe" * 20).decode(),
    ],
    ids=["word", "not-base64", "non-ascii", "nul", "long", "deep-json", "unsigned", "binary"],
)
def test_a_token_this_api_did_not_issue_is_refused(token: str) -> None:
    refused(token)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400) | st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()))
def test_any_token_is_accepted_or_refused_as_invalid_never_anything_else(token: str) -> None:
    try:
        TOKENS.request(ITEMS, 10, token, owner="alice")
    except InvalidValue as error:
        assert error.field == "page_token"


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=200))
def test_any_edit_of_a_real_token_is_refused(position: int, replacement: int) -> None:
    token = a_token()
    at = position % len(token)
    character = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[replacement % 64]
    edited = token[:at] + character + token[at + 1 :]
    if edited != token:
        refused(edited)


def test_a_request_reads_one_more_than_the_page() -> None:
    request = PageRequest(ITEMS, 3)
    assert request.limit == 4
    assert len(page_in_memory(items(10), request)) == 4
