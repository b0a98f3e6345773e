"""Pages of a list: their size and the opaque token that names the next one."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from order_svc.application.ports import PageCursor
from ptkit.domain import InvalidValue
from ptkit.validation import require_uuid

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def page_size_of(page_size: int) -> int:
    """0 asks for the default page size."""
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidValue(f"page_size must be between 0 and {MAX_PAGE_SIZE}")
    return page_size or DEFAULT_PAGE_SIZE


def encode_page_token(cursor: PageCursor | None) -> str:
    if cursor is None:
        return ""
    raw = json.dumps([cursor.created_at.isoformat(), cursor.order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str) -> PageCursor | None:
    if not token:
        return None
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return PageCursor(datetime.fromisoformat(created_at), require_uuid("page_token", order_id))
    except (ValueError, TypeError, binascii.Error, InvalidValue):
        raise InvalidValue(
            "page_token is invalid; pass the next_page_token of a previous page"
        ) from None
