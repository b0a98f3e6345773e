"""Input checks shared by every inbound adapter; failures are InvalidValue (INVALID_ARGUMENT)."""

from __future__ import annotations

import re
import uuid

from ptkit.domain import InvalidValue

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$")


def require_uuid(field: str, value: str) -> str:
    """An id the platform generated: a UUID string."""
    if not value:
        raise InvalidValue(f"{field} is required", field=field)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidValue(
            f"{field} {value[:80]!r} is not a valid id (expected a UUID)", field=field
        ) from None


def require_principal_id(field: str, value: str) -> str:
    """An id that names a person (customer, trainer): 1-64 of letters, digits, . _ @ : -"""
    if not value:
        raise InvalidValue(f"{field} is required", field=field)
    if not _ID_PATTERN.match(value):
        raise InvalidValue(
            f"{field} {value[:80]!r} is invalid: 1-64 letters, digits or . _ @ : - characters",
            field=field,
        )
    return value


def require_text(field: str, value: str, *, max_length: int, required: bool = True) -> str:
    """Trimmed free text of bounded length."""
    text = value.strip()
    if required and not text:
        raise InvalidValue(f"{field} must not be empty", field=field)
    if len(text) > max_length:
        raise InvalidValue(
            f"{field} is too long ({len(text)} characters, at most {max_length})", field=field
        )
    return text


def require_not_negative(field: str, value: int) -> int:
    """A count or position: 0 or more."""
    if value < 0:
        raise InvalidValue(f"{field} must not be negative, got {value}", field=field)
    return value


_REQUEST_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def require_request_id(value: str, field: str = "request_id") -> str:
    """A client's idempotency key (AIP-155): a UUID in its hyphenated form, compared
    case-insensitively (returned in lower case); "" means none (no idempotency)."""
    if not value:
        return ""
    if not _REQUEST_ID_PATTERN.fullmatch(value):
        raise InvalidValue(
            f"{field} {value[:80]!r} is not a UUID "
            "(e.g. 6f1c3a52-8d0e-4b8f-9a57-2f4e0c7d9b13; leave it empty for none)",
            field=field,
        )
    return value.lower()
