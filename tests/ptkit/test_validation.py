"""The text and id rules every service applies to its input (ptkit/validation.py)."""

from __future__ import annotations

import uuid

import pytest

from ptkit.domain import InvalidValue
from ptkit.validation import (
    MULTI_LINE_TEXT,
    SINGLE_LINE_TEXT,
    require_principal_id,
    require_text,
    require_uuid,
)

REFUSED_EVERYWHERE = [
    "\x00",  # NUL
    "\x01",
    "\x1b",  # ESC: terminal escape sequences
    "\x1f",  # unit separator (str.strip would silently drop it)
    "\r",
    "\x7f",  # DEL
    "\x85",  # NEL, a C1 control
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\ufeff",  # byte order mark
    "\u200b",  # zero-width space
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\ue000",  # private use
]

ACCEPTED = [
    "Alice",
    "김민수",
    "Zoë",
    "Zoe\u0308",  # combining diaeresis
    "Ana\u00a0Lima",  # no-break space
    "👩\u200d👩\u200d👧",  # a family emoji: zero-width joiners
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian with a zero-width non-joiner
    "Pilates 1:1 (50% off!) #core",
]


def refusal(call: object, *args: object, **kwargs: object) -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize("char", [*REFUSED_EVERYWHERE, "\n", "\t"])
def test_a_control_or_format_character_in_one_line_text_is_refused_naming_the_field(
    char: str,
) -> None:
    error = refusal(require_text, "customer_name", f"Ali{char}ce", max_length=100)
    assert (error.field, error.reason) == ("customer_name", "INVALID_CHARACTERS")
    assert error.metadata == {"character": f"U+{ord(char):04X}", "position": "3"}
    assert str(error) == (
        f"customer_name holds the character U+{ord(char):04X} at position 3; "
        f"allowed: {SINGLE_LINE_TEXT}"
    )


@pytest.mark.parametrize("char", REFUSED_EVERYWHERE)
def test_multi_line_text_refuses_every_other_control_character(char: str) -> None:
    error = refusal(require_text, "result", f"good{char}", max_length=100, multiline=True)
    assert (error.field, error.reason) == ("result", "INVALID_CHARACTERS")
    assert str(error).endswith(f"allowed: {MULTI_LINE_TEXT}")


def test_the_description_lists_what_is_allowed() -> None:
    assert "letters, marks, digits, punctuation, symbols and spaces" in SINGLE_LINE_TEXT
    assert "line feeds (\\n) and tabs (\\t)" in MULTI_LINE_TEXT


def test_multi_line_text_keeps_its_line_feeds_and_tabs() -> None:
    text = "Squats:\n\t3 x 10\nDeadlift next time"
    assert require_text("result", f"  {text}\n", max_length=100, multiline=True) == text


@pytest.mark.parametrize("text", ACCEPTED)
def test_printable_text_of_any_script_is_accepted(text: str) -> None:
    assert require_text("customer_name", text, max_length=100) == text


def test_a_control_character_is_refused_even_where_trimming_would_drop_it() -> None:
    error = refusal(require_text, "class_name", "Yoga\x1c", max_length=100)
    assert error.metadata["position"] == "4"


def test_empty_and_too_long_text_have_reasons_of_their_own() -> None:
    empty = refusal(require_text, "class_name", "   ", max_length=10)
    assert (empty.reason, empty.field) == ("REQUIRED", "class_name")
    long = refusal(require_text, "class_name", "x" * 11, max_length=10)
    assert (long.reason, long.field, long.metadata) == (
        "TOO_LONG",
        "class_name",
        {"max_length": "10"},
    )
    assert require_text("reason", "", max_length=10, required=False) == ""


@pytest.mark.parametrize(
    "value", ["alice\n", "ali ce", "alice\x00", "-alice", "x" * 65, "al\u00efce"]
)
def test_a_principal_id_is_letters_digits_and_a_few_marks_nothing_else(value: str) -> None:
    error = refusal(require_principal_id, "customer_id", value)
    assert (error.field, error.reason) == ("customer_id", "INVALID_ID")


def test_a_principal_id_is_required() -> None:
    assert refusal(require_principal_id, "customer_id", "").reason == "REQUIRED"
    assert require_principal_id("customer_id", "kim@studio.example") == "kim@studio.example"


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "1234567812345678123456781234567\n",  # int(..., 16) would take the newline
        "{12345678-1234-5678-1234-567812345678}",
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678_1234-5678-1234-567812345678",
        "12345678-1234-5678-1234-56781234567\x00",
    ],
)
def test_a_uuid_is_the_plain_hyphenated_form_only(value: str) -> None:
    error = refusal(require_uuid, "order_id", value)
    assert (error.field, error.reason) == ("order_id", "INVALID_ID")


def test_a_uuid_is_normalised_to_lower_case() -> None:
    value = uuid.uuid4()
    assert require_uuid("order_id", str(value).upper()) == str(value)
    assert refusal(require_uuid, "order_id", "").reason == "REQUIRED"
