"""The database-wide counts behind the metrics' gauges, read by the metrics
loop every `metrics_refresh_seconds` (never by a scrape). Each is an index
range: the active states and the due part of SCHEDULED, not the run history."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowdeck.core import states
from flowdeck.server import work_queues
from flowdeck.server.models import FlowRunRow, WorkQueueRow

ACTIVE_STATES = (states.SCHEDULED, states.PENDING, states.RUNNING)
# Queues counted one by one at the most (their number is the operators' choice).
MAX_QUEUES = 500


@dataclasses.dataclass(frozen=True)
class RunCounts:
    by_state: dict[str, int]
    late: int
    # work queue id -> due SCHEDULED runs it matches
    waiting: dict[str, int]
    # work queue id -> name, for every queue
    queue_names: dict[str, str]


def count(s: Session, now: dt.datetime, late_after_seconds: float) -> RunCounts:
    by_state = dict.fromkeys(ACTIVE_STATES, 0)
    by_state.update(s.execute(
        select(FlowRunRow.state_type, func.count()).where(FlowRunRow.state_type.in_(ACTIVE_STATES))
        .group_by(FlowRunRow.state_type)).all())
    late = s.scalar(select(func.count()).select_from(FlowRunRow).where(
        FlowRunRow.state_type == states.SCHEDULED,
        FlowRunRow.expected_start_time < now - dt.timedelta(seconds=late_after_seconds))) or 0
    queues = list(s.scalars(select(WorkQueueRow).order_by(WorkQueueRow.name).limit(MAX_QUEUES)))
    dialect = s.bind.dialect.name
    waiting = {}
    for q in queues:
        waiting[q.id] = s.scalar(select(func.count()).select_from(FlowRunRow).where(
            FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.expected_start_time <= now,
            work_queues.matches(q, dialect))) or 0
    return RunCounts(by_state, late, waiting, {q.id: q.name for q in queues})


def queue_names(s: Session, ids: list[str]) -> dict[str, str]:
    """id -> name of these work queues (deleted ones are missing)."""
    return dict(s.execute(select(WorkQueueRow.id, WorkQueueRow.name).where(WorkQueueRow.id.in_(ids))).all())
