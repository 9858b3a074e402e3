"""Keyset pagination (AIP-158) for every List.

A List reads its rows in a stable, total order (for runs: expected start time,
then id) and each page starts strictly after the last row of the one before,
so rows inserted or deleted while a caller pages neither repeat nor push
others out of view (offsets would do both). The opaque page token carries that
last key and a digest of the filter and order that made it: a token used with
another filter is refused with INVALID_ARGUMENT naming page_token.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any, Sequence

from sqlalchemy import TypeDecorator, and_, or_, select, union_all
from sqlalchemy.orm import Session

from flowdeck.core.errors import invalid_field

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(value: int) -> int:
    if value < 0:
        raise invalid_field("page_size", value, "must not be negative")
    if value == 0:
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE)


@dataclasses.dataclass(frozen=True)
class Key:
    """One sort key: a column, the attribute holding its value on a result row,
    and its direction."""

    column: Any
    attr: str
    descending: bool = False


class Order:
    """A total order over a List's rows: its last key must be unique."""

    def __init__(self, *keys: Key):
        self.keys = keys
        self.clauses = [k.column.desc() if k.descending else k.column for k in keys]
        self._types = [_python_type(k.column) for k in keys]

    def values(self, row) -> list:
        return [getattr(row, k.attr) for k in self.keys]

    def after(self, values: Sequence) -> Any:
        """A condition: the row comes after one with these key values."""
        terms = []
        for i, key in enumerate(self.keys):
            beyond = key.column < values[i] if key.descending else key.column > values[i]
            terms.append(and_(*[k.column == v for k, v in zip(self.keys[:i], values[:i])], beyond))
        # The first key's bound, said apart too: the OR alone is no index range to the planners.
        first = self.keys[0]
        bound = first.column <= values[0] if first.descending else first.column >= values[0]
        return and_(bound, or_(*terms))

    def on(self, columns) -> list:
        """The ORDER BY clauses over `columns` of the same names (a UNION of the List's rows)."""
        return [columns[k.attr].desc() if k.descending else columns[k.attr] for k in self.keys]

    def decode(self, raw: list, token: str) -> list:
        if not isinstance(raw, list) or len(raw) != len(self.keys):
            raise _bad(token)
        out = []
        for value, kind in zip(raw, self._types):
            if kind is dt.datetime:
                value = _datetime(value, token)
            elif not isinstance(value, kind) or isinstance(value, bool):
                raise _bad(token)
            out.append(value)
        return out


def _python_type(column) -> type:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return kind.python_type


def _bad(token: str):
    return invalid_field("page_token", token, "is not a token this server issued", reason="INVALID_PAGE_TOKEN")


def _datetime(value, token: str) -> dt.datetime:
    try:
        got = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise _bad(token) from None
    if got.tzinfo is None:
        raise _bad(token)
    return got


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def _digest(listing: str, filter_: Any) -> str:
    """What a token is bound to: the List and its filter (and order)."""
    canonical = json.dumps([listing, filter_], sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode(values: list, listing: str, filter_: Any = None) -> str:
    doc = {"f": _digest(listing, filter_), "k": [_plain(v) if isinstance(v, dt.datetime) else v for v in values]}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str, order: Order, listing: str, filter_: Any = None) -> list | None:
    """The key values a page token resumes after (None for the first page)."""
    if not token:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
        digest, raw = doc["f"], doc["k"]
    except Exception:
        raise _bad(token) from None
    if digest != _digest(listing, filter_):
        raise invalid_field("page_token", token, "was made for another filter or order: a token is used "
                                                 "with the filter of the request that returned it",
                            reason="INVALID_PAGE_TOKEN")
    return order.decode(raw, token)


def paginate(s: Session, stmt, order: Order, size: int, token: str, *, listing: str, filter_: Any = None,
             scalars: bool = False, build=None) -> tuple[list, str]:
    """One page of `stmt` in `order`; returns (rows, next_page_token).

    `listing` names the List and `filter_` holds every request field that
    narrows or orders it (the token is bound to both); `scalars` reads ORM
    entities; `build` makes each result row into what the caller returns.

    `stmt` may be a list of statements with the same columns whose rows
    together are the List (a filter `x IN (a, b)` said as `x = a`, `x = b`):
    each is paged on its own, along an index that hands its rows over in
    order, and one UNION ALL merges those pages, so no filter value sorts
    every row it matches."""
    size = page_size(size)
    after = decode(token, order, listing, filter_)
    parts = [_page(part, order, after, size) for part in (stmt if isinstance(stmt, list) else [stmt])]
    if len(parts) == 1:
        stmt = parts[0]
    else:
        merged = union_all(*[select(part.subquery()) for part in parts])
        stmt = merged.order_by(*order.on(merged.selected_columns)).limit(size + 1)
    rows = list(s.scalars(stmt) if scalars else s.execute(stmt))
    token = encode(order.values(rows[size - 1]), listing, filter_) if len(rows) > size else ""
    rows = rows[:size]
    if build is not None:
        rows = [build(r) for r in rows]
    return rows, token


def _page(stmt, order: Order, after: list | None, size: int):
    if after is not None:
        stmt = stmt.where(order.after(after))
    return stmt.order_by(*order.clauses).limit(size + 1)
