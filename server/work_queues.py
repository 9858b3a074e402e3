"""Work queues: CRUD, the matching rule, and previews.

A run matches a queue when it carries every one of the queue's filter tags, its
deployment is among `deployment_ids` (when any are set) and its runner type is
among `flow_runner_types` (when any are set). Only runs of a deployment match:
an agent needs the deployment's flow_data to run anything.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import NamedTuple

from sqlalchemy import and_, case, delete, func, or_, select, true
from sqlalchemy.orm import Session

from flowdeck.server import pagination
from flowdeck.core import states
from flowdeck.core.errors import AlreadyExistsError, NotFoundError, invalid_field
from flowdeck.core.queue_match import DEFAULT_RUNNER
from flowdeck.core.runner_config import RUNNER_TYPES
from flowdeck.server.models import DeploymentRow, FlowRunRow, WorkQueueRow, utcnow
from flowdeck.server.sqlhelpers import has_all_tags
from flowdeck.server.views import FLOW_RUNS, FlowRunView

# Fields UpdateWorkQueue's mask may name.
MUTABLE = ("name", "description", "filter", "is_paused", "concurrency_limit")
ACTIVE = (states.PENDING, states.RUNNING)
# Runs a preview shows at the most.
PREVIEW_LIMIT = 200


@dataclasses.dataclass
class WorkQueueInput:
    name: str = ""
    description: str = ""
    tags: list = dataclasses.field(default_factory=list)
    deployment_ids: list = dataclasses.field(default_factory=list)
    flow_runner_types: list = dataclasses.field(default_factory=list)
    is_paused: bool = False
    concurrency_limit: int | None = None


def _check(s: Session, inp: WorkQueueInput, path: str = "work_queue") -> None:
    for i, t in enumerate(inp.flow_runner_types):
        if t not in RUNNER_TYPES:
            raise invalid_field(f"{path}.filter.flow_runner_types[{i}]", t,
                                  f"must be one of {', '.join(RUNNER_TYPES)}")
    if inp.concurrency_limit is not None and inp.concurrency_limit < 0:
        raise invalid_field(f"{path}.concurrency_limit", inp.concurrency_limit, "must not be negative")
    if inp.deployment_ids:
        known = set(s.scalars(select(DeploymentRow.id).where(DeploymentRow.id.in_(inp.deployment_ids))))
        for i, d in enumerate(inp.deployment_ids):
            if d not in known:
                raise invalid_field(f"{path}.filter.deployment_ids[{i}]", d, "no such deployment")


def _name_taken(s: Session, name: str, but: str | None = None) -> None:
    stmt = select(WorkQueueRow.id).where(WorkQueueRow.name == name)
    if but:
        stmt = stmt.where(WorkQueueRow.id != but)
    if s.scalar(stmt):
        raise AlreadyExistsError(f"work queue {name!r} already exists", reason="WORK_QUEUE_EXISTS", name=name)


def create(s: Session, inp: WorkQueueInput, now: dt.datetime | None = None) -> WorkQueueRow:
    now = now or utcnow()
    _check(s, inp)
    _name_taken(s, inp.name)
    row = WorkQueueRow(
        name=inp.name, description=inp.description, filter_tags=inp.tags,
        filter_deployment_ids=inp.deployment_ids, filter_flow_runner_types=inp.flow_runner_types,
        is_paused=inp.is_paused, concurrency_limit=inp.concurrency_limit, created=now, updated=now,
    )
    s.add(row)
    s.flush()
    return row


def get(s: Session, queue_id: str) -> WorkQueueRow:
    row = s.get(WorkQueueRow, queue_id)
    if row is None:
        raise NotFoundError(f"work queue {queue_id!r} not found", reason="WORK_QUEUE_NOT_FOUND")
    return row


def get_by_name(s: Session, name: str) -> WorkQueueRow:
    row = s.scalar(select(WorkQueueRow).where(WorkQueueRow.name == name))
    if row is None:
        raise NotFoundError(f"work queue {name!r} not found", reason="WORK_QUEUE_NOT_FOUND", name=name)
    return row


def by_names(s: Session, names: list[str], path: str = "work_queues") -> list[WorkQueueRow]:
    rows = {r.name: r for r in s.scalars(select(WorkQueueRow).where(WorkQueueRow.name.in_(names)))}
    missing = [n for n in names if n not in rows]
    if missing:
        raise NotFoundError(f"work queue(s) not found: {', '.join(repr(m) for m in missing)}",
                       reason="WORK_QUEUE_NOT_FOUND", names=",".join(missing))
    return [rows[n] for n in names]


_NAME_ORDER = pagination.Order(pagination.Key(WorkQueueRow.name, "name"))


def list_(s: Session, page_size: int, page_token: str) -> tuple[list[WorkQueueRow], str]:
    return pagination.paginate(s, select(WorkQueueRow), _NAME_ORDER, page_size, page_token, listing="work_queues",
                               scalars=True)


def update(s: Session, queue_id: str, inp: WorkQueueInput, paths: list[str],
           now: dt.datetime | None = None) -> WorkQueueRow:
    now = now or utcnow()
    row = get(s, queue_id)
    if "filter" in paths or "concurrency_limit" in paths:
        _check(s, inp)
    if "name" in paths:
        _name_taken(s, inp.name, but=row.id)
        row.name = inp.name
    if "description" in paths:
        row.description = inp.description
    if "filter" in paths:
        row.filter_tags = inp.tags
        row.filter_deployment_ids = inp.deployment_ids
        row.filter_flow_runner_types = inp.flow_runner_types
    if "is_paused" in paths:
        row.is_paused = inp.is_paused
    if "concurrency_limit" in paths:
        row.concurrency_limit = inp.concurrency_limit
    row.updated = now
    s.flush()
    return row


def delete_(s: Session, queue_id: str) -> None:
    get(s, queue_id)
    s.execute(delete(WorkQueueRow).where(WorkQueueRow.id == queue_id))


# -- matching ----------------------------------------------------------------

def runner_type_expr():
    """A run's runner type; runs created without one run on the default."""
    return func.coalesce(func.nullif(FlowRunRow.flow_runner_type, ""), DEFAULT_RUNNER)


def matches(q: WorkQueueRow, dialect: str):
    """A SQL condition: the run in FlowRunRow matches queue `q` (the rule of
    flowdeck.core.queue_match, in SQL)."""
    conds = [FlowRunRow.deployment_id.is_not(None)]
    if q.filter_tags:
        conds.append(has_all_tags(FlowRunRow.tags, list(q.filter_tags), dialect))
    if q.filter_deployment_ids:
        conds.append(FlowRunRow.deployment_id.in_(list(q.filter_deployment_ids)))
    if q.filter_flow_runner_types:
        conds.append(runner_type_expr().in_(list(q.filter_flow_runner_types)))
    return and_(true(), *conds)


def active_count(s: Session, queue_id: str) -> int:
    """Runs leased through this queue that are PENDING or RUNNING."""
    return s.scalar(
        select(func.count()).select_from(FlowRunRow).where(
            FlowRunRow.work_queue_id == queue_id, FlowRunRow.state_type.in_(ACTIVE)
        )
    ) or 0


class RunCounts(NamedTuple):
    late: int
    running: int


NO_RUNS = RunCounts(0, 0)
# Two result columns per queue: SQLite allows 2000 in one SELECT.
_COUNT_CHUNK = 200


def run_counts(s: Session, rows: list[WorkQueueRow]) -> dict[str, RunCounts]:
    """Per queue: its Late runs (SCHEDULED runs named Late that match it) and
    its running runs (leased through it, PENDING or RUNNING). One query per
    200 queues: a conditional count per queue over the late and active runs."""
    out: dict[str, RunCounts] = {}
    for start in range(0, len(rows), _COUNT_CHUNK):
        out.update(_run_counts(s, rows[start:start + _COUNT_CHUNK]))
    return out


def _run_counts(s: Session, rows: list[WorkQueueRow]) -> dict[str, RunCounts]:
    dialect = s.bind.dialect.name
    late = and_(FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.state_name == states.LATE_NAME)
    active = and_(FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.work_queue_id.in_([q.id for q in rows]))
    columns = []
    for q in rows:
        columns.append(func.count(case((and_(late, matches(q, dialect)), 1))))
        columns.append(func.count(case((and_(active, FlowRunRow.work_queue_id == q.id), 1))))
    values = s.execute(select(*columns).where(or_(late, active))).one()
    return {q.id: RunCounts(values[2 * i], values[2 * i + 1]) for i, q in enumerate(rows)}


def preview(s: Session, q: WorkQueueRow, within_seconds: float, limit: int = PREVIEW_LIMIT,
            now: dt.datetime | None = None) -> tuple[list[FlowRunView], bool]:
    """SCHEDULED runs matching the queue that are due within the next N
    seconds, soonest first: at most `limit`, and whether more were left out."""
    now = now or utcnow()
    rows = s.execute(
        FLOW_RUNS.where(
            FlowRunRow.state_type == states.SCHEDULED,
            FlowRunRow.expected_start_time <= now + dt.timedelta(seconds=within_seconds),
            matches(q, s.bind.dialect.name),
        )
        .order_by(FlowRunRow.expected_start_time, FlowRunRow.id)
        .limit(limit + 1)
    ).all()
    return [FlowRunView(*r) for r in rows[:limit]], len(rows) > limit
