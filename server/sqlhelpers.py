"""Portable SQL pieces for JSON columns (Postgres jsonb, SQLite json1)."""
from __future__ import annotations

from sqlalchemy import and_, exists, func, literal_column, select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB


def has_all_tags(column, tags: list[str], dialect: str):
    """`column` (a JSON list) contains every one of `tags`."""
    if not tags:
        return true()
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains(sorted(set(tags)))
    conds = []
    for tag in sorted(set(tags)):
        each = func.json_each(column).table_valued("value")
        conds.append(exists(select(literal_column("1")).select_from(each).where(each.c.value == tag)))
    return and_(*conds)
