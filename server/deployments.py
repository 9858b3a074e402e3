"""Deployments: upsert on flow_name/name, lookups, listing, field-mask updates."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from flowdeck.server import flows, pagination, scheduler, storage_blocks
from flowdeck.core import states
from flowdeck.core.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, invalid_field
# Runner types an agent knows how to run, and their config keys (work queues filter by type).
from flowdeck.core.runner_config import RUNNER_TYPES, check_runner  # noqa: F401
from flowdeck.server.models import DeploymentRow, FlowRow, FlowRunRow, utcnow
from flowdeck.server.sqlhelpers import has_all_tags

# Fields a full create sets and UpdateDeployment's mask may name.
MUTABLE = (
    "name",
    "flow_data",
    "schedule",
    "is_schedule_active",
    "parameters",
    "tags",
    "flow_runner",
    "description",
    "catchup",
    "max_lateness",
)
# Changing any of these replaces the deployment's future auto-scheduled runs.
SCHEDULING_FIELDS = ("schedule", "is_schedule_active", "parameters", "tags", "flow_runner", "max_lateness")


@dataclasses.dataclass
class DeploymentInput:
    name: str = ""
    flow_id: str = ""
    flow_name: str = ""
    flow_data_encoding: str = ""
    flow_data_blob: str = ""
    schedule: dict | None = None
    is_schedule_active: bool = True
    parameters: dict = dataclasses.field(default_factory=dict)
    tags: list = dataclasses.field(default_factory=list)
    flow_runner_type: str = "universal"
    flow_runner_config: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    catchup: bool = False
    max_lateness_seconds: float | None = None
    storage_block_id: str | None = None


def _columns_for(field: str) -> tuple[str, ...]:
    return {
        "flow_data": ("flow_data_encoding", "flow_data_blob", "storage_block_id"),
        "flow_runner": ("flow_runner_type", "flow_runner_config"),
        "max_lateness": ("max_lateness_seconds",),
    }.get(field, (field,))


def _resolve_flow(s: Session, inp: DeploymentInput) -> FlowRow:
    if inp.flow_id:
        flow = flows.get(s, inp.flow_id)
        if inp.flow_name and inp.flow_name != flow.name:
            raise invalid_field(
                "deployment.flow_name", inp.flow_name, f"does not match flow {inp.flow_id} ({flow.name!r})"
            )
        return flow
    return flows.get_or_create(s, inp.flow_name)


_ROW_BY_FLOW_AND_NAME = select(DeploymentRow).where(DeploymentRow.flow_id == bindparam("flow_id"),
                                                     DeploymentRow.name == bindparam("name"))


def upsert(s: Session, inp: DeploymentInput, now: dt.datetime | None = None,
           settings=None) -> tuple[DeploymentRow, bool]:
    """Create the deployment, or update the one with the same flow and name."""
    now = now or utcnow()
    check_runner(inp.flow_runner_type, inp.flow_runner_config)
    flow = _resolve_flow(s, inp)
    storage_blocks.check_exists(s, inp.storage_block_id)
    row = s.scalar(_ROW_BY_FLOW_AND_NAME, {"flow_id": flow.id, "name": inp.name})
    created = row is None
    if created:
        row = DeploymentRow(flow_id=flow.id, name=inp.name, created=now, updated=now)
        s.add(row)
        changed = set(SCHEDULING_FIELDS)
    else:
        changed = set()
    for field in MUTABLE:
        if field == "name":
            continue
        for col in _columns_for(field):
            value = getattr(inp, col)
            if getattr(row, col) != value:
                setattr(row, col, value)
                changed.add(field)
    row.updated = now
    if created and not scheduler._is_active(row):
        # What reschedule_deployment sets below, in the INSERT (saves an UPDATE).
        row.scheduled_until = None
        row.scheduler_due_at = scheduler.NEVER
    s.flush()
    row.flow_name = flow.name  # for the API's convenience field
    if changed & set(SCHEDULING_FIELDS):
        scheduler.reschedule_deployment(s, row, now, settings, fresh=created)
    else:
        row.next_run_time = scheduler.next_run_time(s, row.id)
    return row, created


def _with_flow_name(s: Session, row: DeploymentRow) -> DeploymentRow:
    row.flow_name = s.scalar(select(FlowRow.name).where(FlowRow.id == row.flow_id))
    return row


def get(s: Session, deployment_id: str) -> DeploymentRow:
    row = s.get(DeploymentRow, deployment_id)
    if row is None:
        raise NotFoundError(f"deployment {deployment_id!r} not found", reason="DEPLOYMENT_NOT_FOUND")
    row.next_run_time = scheduler.next_run_time(s, row.id)
    return _with_flow_name(s, row)


# -- hot lookups: one prebuilt Core statement each (compiled once, cached) -------

_D = DeploymentRow.__table__
_NEXT_RUN_TIME = (
    select(func.min(FlowRunRow.__table__.c.expected_start_time))
    .where(FlowRunRow.__table__.c.deployment_id == _D.c.id,
           FlowRunRow.__table__.c.state_type == states.SCHEDULED)
    .scalar_subquery()
)
_FULL_SELECT = select(*_D.c, FlowRow.__table__.c.name.label("flow_name"),
                      _NEXT_RUN_TIME.label("next_run_time")).join_from(
    _D, FlowRow.__table__, FlowRow.__table__.c.id == _D.c.flow_id)
_BY_NAME = _FULL_SELECT.where(FlowRow.__table__.c.name == bindparam("flow_name"),
                              _D.c.name == bindparam("dep_name"))
_BY_ID = _FULL_SELECT.where(_D.c.id == bindparam("dep_id"))
# What a run created from a deployment needs (no next run time).
_FOR_RUN_COLUMNS = (_D.c.id, _D.c.flow_id, _D.c.parameters, _D.c.tags, _D.c.flow_runner_type,
                    _D.c.flow_runner_config, FlowRow.__table__.c.name.label("flow_name"))
_FOR_RUN = select(*_FOR_RUN_COLUMNS).join_from(_D, FlowRow.__table__, FlowRow.__table__.c.id == _D.c.flow_id)
_FOR_RUN_BY_NAME = _FOR_RUN.where(FlowRow.__table__.c.name == bindparam("flow_name"),
                                  _D.c.name == bindparam("dep_name"))
_FOR_RUN_BY_ID = _FOR_RUN.where(_D.c.id == bindparam("dep_id"))


def _not_found(what: str):
    return NotFoundError(f"deployment {what!r} not found", reason="DEPLOYMENT_NOT_FOUND")


def view_by_name(conn, full: str, field: str = "name"):
    """The deployment as a read-only row (every column, flow_name and
    next_run_time) in ONE statement: what GetDeploymentByName returns."""
    flow_name, dep_name = split_name(full, field)
    row = conn.execute(_BY_NAME, {"flow_name": flow_name, "dep_name": dep_name}).first()
    if row is None:
        raise _not_found(full)
    return row


def view_by_id(conn, deployment_id: str):
    row = conn.execute(_BY_ID, {"dep_id": deployment_id}).first()
    if row is None:
        raise _not_found(deployment_id)
    return row


def for_run(conn, *, deployment_id: str = "", deployment_name: str = "", field: str = "deployment_name"):
    """What creating a run from a deployment needs (id, flow, defaults), one statement."""
    if deployment_id:
        row = conn.execute(_FOR_RUN_BY_ID, {"dep_id": deployment_id}).first()
    else:
        flow_name, dep_name = split_name(deployment_name, field)
        row = conn.execute(_FOR_RUN_BY_NAME, {"flow_name": flow_name, "dep_name": dep_name}).first()
    if row is None:
        raise _not_found(deployment_id or deployment_name)
    return row


def split_name(full: str, field: str = "name") -> tuple[str, str]:
    flow_name, sep, dep_name = full.partition("/")
    if not sep or not flow_name or not dep_name or "/" in dep_name:
        raise invalid_field(field, full, "must be 'flow_name/deployment_name'")
    return flow_name, dep_name


def get_by_name(s: Session, full: str, field: str = "name") -> DeploymentRow:
    flow_name, dep_name = split_name(full, field)
    row = s.scalar(
        select(DeploymentRow)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .where(FlowRow.name == flow_name, DeploymentRow.name == dep_name)
    )
    if row is None:
        raise NotFoundError(f"deployment {full!r} not found", reason="DEPLOYMENT_NOT_FOUND")
    row.flow_name = flow_name
    row.next_run_time = scheduler.next_run_time(s, row.id)
    return row


def list_(s: Session, page_size: int, page_token: str, flow_name: str = "", tags: list[str] | None = None):
    stmt = (
        select(DeploymentRow, FlowRow.name)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .order_by(FlowRow.name, DeploymentRow.name)
    )
    if flow_name:
        stmt = stmt.where(FlowRow.name == flow_name)
    if tags:
        stmt = stmt.where(has_all_tags(DeploymentRow.tags, tags, s.bind.dialect.name))
    size = pagination.page_size(page_size)
    offset = pagination.decode(page_token)
    rows = s.execute(stmt.offset(offset).limit(size + 1)).all()
    out = []
    for row, fname in rows[:size]:
        row.flow_name = fname
        out.append(row)
    next_runs = scheduler.next_run_times(s, [row.id for row in out])
    for row in out:
        row.next_run_time = next_runs.get(row.id)
    return out, (pagination.encode(offset + size) if len(rows) > size else "")


def update(s: Session, deployment_id: str, inp: DeploymentInput, paths: list[str], now: dt.datetime | None = None,
           settings=None):
    now = now or utcnow()
    row = get(s, deployment_id)
    if "flow_data" in paths:
        storage_blocks.check_exists(s, inp.storage_block_id)
    changed = set()
    for path in paths:
        if path == "flow_runner":
            check_runner(inp.flow_runner_type, inp.flow_runner_config)
        if path == "name" and inp.name != row.name:
            clash = s.scalar(
                select(DeploymentRow.id).where(
                    DeploymentRow.flow_id == row.flow_id, DeploymentRow.name == inp.name
                )
            )
            if clash:
                raise AlreadyExistsError(
                    f"deployment {row.flow_name}/{inp.name} already exists", reason="DEPLOYMENT_EXISTS"
                )
        for col in _columns_for(path):
            value = getattr(inp, col)
            if getattr(row, col) != value:
                setattr(row, col, value)
                changed.add(path)
    row.updated = now
    s.flush()
    if changed & set(SCHEDULING_FIELDS):
        scheduler.reschedule_deployment(s, row, now, settings)
    return row


def delete_(s: Session, deployment_id: str) -> None:
    get(s, deployment_id)
    scheduler.delete_future_runs(s, deployment_id)
    s.execute(delete(DeploymentRow).where(DeploymentRow.id == deployment_id))
