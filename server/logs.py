"""Log records attached to flow runs."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from flowdeck.server import pagination
from flowdeck.core.errors import NotFoundError
from flowdeck.server.models import FlowRunRow, LogRow


@dataclasses.dataclass
class LogInput:
    flow_run_id: str
    timestamp: dt.datetime
    level: int
    logger_name: str
    message: str


def create_many(s: Session, records: list[LogInput]) -> int:
    if not records:
        return 0
    run_ids = {r.flow_run_id for r in records}
    found = set(s.scalars(select(FlowRunRow.id).where(FlowRunRow.id.in_(run_ids))))
    missing = run_ids - found
    if missing:
        raise NotFoundError(f"flow run {sorted(missing)[0]!r} not found", reason="FLOW_RUN_NOT_FOUND")
    s.execute(insert(LogRow), [dataclasses.asdict(r) for r in records])
    return len(records)


_BY_TIME = pagination.Order(pagination.Key(LogRow.timestamp, "timestamp"), pagination.Key(LogRow.id, "id"))


def list_(s: Session, flow_run_id: str, page_size: int, page_token: str,
          min_level: int = 0) -> tuple[list[LogRow], str]:
    if s.get(FlowRunRow, flow_run_id) is None:
        raise NotFoundError(f"flow run {flow_run_id!r} not found", reason="FLOW_RUN_NOT_FOUND")
    stmt = select(LogRow).where(LogRow.flow_run_id == flow_run_id, LogRow.level >= min_level)
    return pagination.paginate(s, stmt, _BY_TIME, page_size, page_token, listing="logs",
                               filter_=[flow_run_id, min_level], scalars=True)
