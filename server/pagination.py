"""Opaque page tokens (AIP-158) over offsets."""
from __future__ import annotations

import base64
import json

from flowdeck.core.errors import InvalidArgumentError, invalid_field

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Larger offsets are forged tokens (and overflow the databases' integers).
MAX_OFFSET = 2**53


def page_size(value: int) -> int:
    if value < 0:
        raise invalid_field("page_size", value, "must not be negative")
    if value == 0:
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE)


def decode(token: str) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode() + b"==").decode())["o"]
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
            raise ValueError
        return offset
    except Exception:
        raise invalid_field("page_token", token, "is not a token this server issued",
                            reason="INVALID_PAGE_TOKEN") from None


def encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def paginate(stmt, session, size: int, token: str):
    """Run `stmt` for one page; return (rows, next_page_token)."""
    size = page_size(size)
    offset = decode(token)
    rows = list(session.scalars(stmt.offset(offset).limit(size + 1)))
    if len(rows) > size:
        return rows[:size], encode(offset + size)
    return rows, ""
