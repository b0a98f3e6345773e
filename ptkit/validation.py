"""Input checks shared by every inbound adapter; failures are InvalidValue (INVALID_ARGUMENT)
naming the field.

Text is printable Unicode: letters, marks, digits, punctuation, symbols and spaces, plus
the zero-width (non-)joiners emoji and some scripts need. Multi-line free text (class
results, reasons) may hold line feeds and tabs too. Refused: control characters (NUL,
U+0001-U+001F, DEL, U+0080-U+009F), other format characters (bidirectional overrides,
U+FEFF...), line and paragraph separators, private-use and surrogate code points. Code
points the server's Unicode database does not know yet pass (a newer emoji is no mistake).
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from ptkit.domain import InvalidValue

_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}")
_UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})
_LINE_BREAKS = frozenset({"\n", "\t"})

SINGLE_LINE_TEXT = (
    "printable Unicode: letters, marks, digits, punctuation, symbols and spaces "
    "(no control characters such as NUL, no line breaks)"
)
MULTI_LINE_TEXT = (
    "printable Unicode: letters, marks, digits, punctuation, symbols and spaces, "
    "line feeds (\\n) and tabs (\\t) (no other control characters such as NUL)"
)


def require_uuid(field: str, value: str) -> str:
    """An id the platform generated: a UUID string (8-4-4-4-12 hex digits)."""
    if not value:
        raise InvalidValue(f"{field} is required", reason="REQUIRED", field=field)
    if not _UUID_PATTERN.fullmatch(value):
        raise InvalidValue(
            f"{field} {value[:80]!r} is not a valid id (expected a UUID)",
            reason="INVALID_ID",
            field=field,
        )
    return str(uuid.UUID(value))


def require_principal_id(field: str, value: str) -> str:
    """An id that names a person (customer, trainer): 1-64 of letters, digits, . _ @ : -"""
    if not value:
        raise InvalidValue(f"{field} is required", reason="REQUIRED", field=field)
    if not _ID_PATTERN.fullmatch(value):
        raise InvalidValue(
            f"{field} {value[:80]!r} is invalid: 1-64 letters, digits or . _ @ : - characters",
            reason="INVALID_ID",
            field=field,
        )
    return value


def require_text(
    field: str, value: str, *, max_length: int, required: bool = True, multiline: bool = False
) -> str:
    """Trimmed free text of bounded length, of printable characters only (line feeds and
    tabs too if ``multiline``)."""
    require_printable(field, value, multiline=multiline)
    text = value.strip()
    if required and not text:
        raise InvalidValue(f"{field} must not be empty", reason="REQUIRED", field=field)
    if len(text) > max_length:
        raise InvalidValue(
            f"{field} is too long ({len(text)} characters, at most {max_length})",
            reason="TOO_LONG",
            field=field,
            metadata={"max_length": str(max_length)},
        )
    return text


def require_printable(field: str, value: str, *, multiline: bool = False) -> str:
    """``value`` unchanged if every character is allowed in text (see the module)."""
    for position, char in enumerate(value):
        if not _allowed(char, multiline):
            allowed = MULTI_LINE_TEXT if multiline else SINGLE_LINE_TEXT
            raise InvalidValue(
                f"{field} holds the character U+{ord(char):04X} at position {position}; "
                f"allowed: {allowed}",
                reason="INVALID_CHARACTERS",
                field=field,
                metadata={"character": f"U+{ord(char):04X}", "position": str(position)},
            )
    return value


def _allowed(char: str, multiline: bool) -> bool:
    if char.isprintable() or char == " ":
        return True
    if multiline and char in _LINE_BREAKS:
        return True
    return char in _JOINERS or unicodedata.category(char) not in _REFUSED_CATEGORIES


def require_not_negative(field: str, value: int) -> int:
    """A count or position: 0 or more."""
    if value < 0:
        raise InvalidValue(f"{field} must not be negative, got {value}", field=field)
    return value


_REQUEST_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def is_request_id(value: str) -> bool:
    """An idempotency key in the form :func:`require_request_id` accepts."""
    return bool(_REQUEST_ID_PATTERN.fullmatch(value))


def require_request_id(value: str, field: str = "request_id") -> str:
    """A client's idempotency key (AIP-155): a UUID in its hyphenated form, compared
    case-insensitively (returned in lower case); "" means none (no idempotency)."""
    if not value:
        return ""
    if not is_request_id(value):
        raise InvalidValue(
            f"{field} {value[:80]!r} is not a UUID "
            "(e.g. 6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13; leave it empty for none)",
            field=field,
        )
    return value.lower()
