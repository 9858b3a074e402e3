"""Flows: get-or-create by name, lookups, listing, deletion."""
from __future__ import annotations

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flowdeck.server import pagination
from flowdeck.core.errors import NotFoundError
from flowdeck.server.models import FlowRow, new_id, utcnow


_BY_NAME = select(FlowRow).where(FlowRow.name == bindparam("name"))
# ON CONFLICT DO NOTHING: two callers creating one flow both get it.
_CREATE = {
    "postgresql": pg_insert(FlowRow.__table__).on_conflict_do_nothing(index_elements=["name"]),
    "sqlite": sqlite_insert(FlowRow.__table__).on_conflict_do_nothing(index_elements=["name"]),
}


def get_or_create(s: Session, name: str) -> FlowRow:
    row = s.scalar(_BY_NAME, {"name": name})
    if row is not None:
        return row
    now = utcnow()
    s.execute(_CREATE["postgresql" if s.bind.dialect.name == "postgresql" else "sqlite"], {"id": new_id(), "name": name, "created": now, "updated": now})
    return s.scalar(_BY_NAME, {"name": name})


def get(s: Session, flow_id: str) -> FlowRow:
    row = s.get(FlowRow, flow_id)
    if row is None:
        raise NotFoundError(f"flow {flow_id!r} not found", reason="FLOW_NOT_FOUND")
    return row


def get_by_name(s: Session, name: str) -> FlowRow:
    row = s.scalar(select(FlowRow).where(FlowRow.name == name))
    if row is None:
        raise NotFoundError(f"flow {name!r} not found", reason="FLOW_NOT_FOUND")
    return row


_NAME_ORDER = pagination.Order(pagination.Key(FlowRow.name, "name"))


def list_(s: Session, page_size: int, page_token: str, name_prefix: str = "") -> tuple[list[FlowRow], str]:
    stmt = select(FlowRow)
    if name_prefix:
        stmt = stmt.where(FlowRow.name.startswith(name_prefix, autoescape=True))
    return pagination.paginate(s, stmt, _NAME_ORDER, page_size, page_token, listing="flows", filter_=name_prefix,
                               scalars=True)


def delete_(s: Session, flow_id: str) -> None:
    get(s, flow_id)
    s.execute(delete(FlowRow).where(FlowRow.id == flow_id))
