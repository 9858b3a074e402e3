"""Deployments: upsert on flow_name/name, lookups, listing, field-mask updates."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import NamedTuple

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from flowdeck.server import flows, pagination, parameter_schemas, scheduler, storage_blocks
from flowdeck.core.errors import AlreadyExistsError, NotFoundError, invalid_field
from flowdeck.core.runner_config import check_runner
from flowdeck.server.models import DeploymentRow, FlowRow, utcnow
from flowdeck.server.sqlhelpers import has_all_tags
from flowdeck.server.views import DEPLOYMENTS, DeploymentView

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
    "parameter_schema",
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
    parameter_schema: dict | None = None
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


def _apply(row: DeploymentRow, inp: DeploymentInput, fields) -> set[str]:
    """Copy `fields` of `inp` onto the row; returns the fields that changed."""
    changed = set()
    for field in fields:
        for col in _columns_for(field):
            value = getattr(inp, col)
            if getattr(row, col) != value:
                setattr(row, col, value)
                changed.add(field)
    return changed


def _check_parameters(row: DeploymentRow, changed: set[str]) -> None:
    """The defaults fit the schema. Required parameters may be left to each
    run, but not on a scheduled deployment: its runs get the defaults only."""
    if changed & {"parameters", "parameter_schema", "schedule"}:
        parameter_schemas.check(row.parameter_schema, row.parameters or {}, path="deployment.parameters",
                                require_all=bool(row.schedule),
                                required_why=": the schedule's runs get only the deployment's parameters")


def _settle(s: Session, row: DeploymentRow, flow_name: str, changed: set[str], now: dt.datetime, settings,
            *, fresh: bool = False) -> DeploymentView:
    """After a change: replace the future runs when scheduling changed (in the
    same transaction); the deployment as the API shows it."""
    s.flush()
    created = 0
    if changed & set(SCHEDULING_FIELDS):
        created = scheduler.reschedule_deployment(s, row, now, settings, fresh=fresh)
    if fresh and not created:
        # A deployment created without runs has no next or last run: no query needed.
        return DeploymentView.of(row, flow_name)
    return get(s, row.id)


def upsert(s: Session, inp: DeploymentInput, now: dt.datetime | None = None,
           settings=None) -> tuple[DeploymentView, bool]:
    """Create the deployment, or update the one with the same flow and name."""
    now = now or utcnow()
    check_runner(inp.flow_runner_type, inp.flow_runner_config)
    inp.parameter_schema = parameter_schemas.check_schema(inp.parameter_schema)
    flow = _resolve_flow(s, inp)
    storage_blocks.check_exists(s, inp.storage_block_id)
    row = s.scalar(_ROW_BY_FLOW_AND_NAME, {"flow_id": flow.id, "name": inp.name})
    created = row is None
    if created:
        row = DeploymentRow(flow_id=flow.id, name=inp.name, created=now, updated=now)
        s.add(row)
    changed = _apply(row, inp, [f for f in MUTABLE if f != "name"])
    _check_parameters(row, changed)
    if created:
        changed |= set(SCHEDULING_FIELDS)
        if not scheduler.has_active_schedule(row):
            # What reschedule_deployment sets, in the INSERT (saves an UPDATE).
            row.scheduled_until = None
            row.scheduler_due_at = scheduler.NEVER
    row.updated = now
    return _settle(s, row, flow.name, changed, now, settings, fresh=created), created


# -- reads: one prebuilt statement each (compiled once, cached); they take a
# Session or a bare Connection (the single-statement read path) ---------------

_D = DeploymentRow.__table__
_F = FlowRow.__table__
_BY_NAME = DEPLOYMENTS.where(_F.c.name == bindparam("flow_name"), _D.c.name == bindparam("dep_name"))
_BY_ID = DEPLOYMENTS.where(_D.c.id == bindparam("dep_id"))


class RunDefaults(NamedTuple):
    """What a run created from a deployment takes from it."""

    id: str
    flow_id: str
    parameters: dict
    parameter_schema: dict | None
    tags: list
    flow_runner_type: str
    flow_runner_config: dict
    flow_name: str


_FOR_RUN = select(*[_F.c.name.label("flow_name") if f == "flow_name" else _D.c[f] for f in RunDefaults._fields]
                  ).join_from(_D, _F, _F.c.id == _D.c.flow_id)
_FOR_RUN_BY_NAME = _FOR_RUN.where(_F.c.name == bindparam("flow_name"), _D.c.name == bindparam("dep_name"))
_FOR_RUN_BY_ID = _FOR_RUN.where(_D.c.id == bindparam("dep_id"))


def _not_found(what: str):
    return NotFoundError(f"deployment {what!r} not found", reason="DEPLOYMENT_NOT_FOUND")


def get(conn, deployment_id: str) -> DeploymentView:
    row = conn.execute(_BY_ID, {"dep_id": deployment_id}).first()
    if row is None:
        raise _not_found(deployment_id)
    return DeploymentView.from_row(row)


def get_by_name(conn, full: str, field: str = "name") -> DeploymentView:
    """The deployment named 'flow_name/deployment_name', in ONE statement."""
    flow_name, dep_name = split_name(full, field)
    row = conn.execute(_BY_NAME, {"flow_name": flow_name, "dep_name": dep_name}).first()
    if row is None:
        raise _not_found(full)
    return DeploymentView.from_row(row)


def for_run(conn, *, deployment_id: str = "", deployment_name: str = "",
            field: str = "deployment_name") -> RunDefaults:
    """What creating a run from a deployment needs (id, flow, defaults), one statement."""
    if deployment_id:
        row = conn.execute(_FOR_RUN_BY_ID, {"dep_id": deployment_id}).first()
    else:
        flow_name, dep_name = split_name(deployment_name, field)
        row = conn.execute(_FOR_RUN_BY_NAME, {"flow_name": flow_name, "dep_name": dep_name}).first()
    if row is None:
        raise _not_found(deployment_id or deployment_name)
    return RunDefaults(*row)


def split_name(full: str, field: str = "name") -> tuple[str, str]:
    flow_name, sep, dep_name = full.partition("/")
    if not sep or not flow_name or not dep_name or "/" in dep_name:
        raise invalid_field(field, full, "must be 'flow_name/deployment_name'")
    return flow_name, dep_name


_BY_FULL_NAME = pagination.Order(pagination.Key(_F.c.name, "flow_name"), pagination.Key(_D.c.name, "name"))


MAX_NAME_CONTAINS = 401  # "flow/deployment": two names of at most 200 characters


def _checked_name_contains(text: str) -> str:
    if len(text) > MAX_NAME_CONTAINS:
        raise invalid_field("name_contains", text, f"must be at most {MAX_NAME_CONTAINS} characters")
    return text


def list_(s: Session, page_size: int, page_token: str, flow_name: str = "", tags: list[str] | None = None,
          name_contains: str = "") -> tuple[list[DeploymentView], str]:
    """A page in "flow/deployment" order; `name_contains`: only those whose full
    name contains the text, ignoring ASCII case (LIKE's wildcards taken literally)."""
    stmt = DEPLOYMENTS
    if flow_name:
        stmt = stmt.where(_F.c.name == flow_name)
    if tags:
        stmt = stmt.where(has_all_tags(_D.c.tags, tags, s.bind.dialect.name))
    if name_contains:
        stmt = stmt.where((_F.c.name + "/" + _D.c.name).icontains(_checked_name_contains(name_contains),
                                                                  autoescape=True))
    filter_ = [flow_name, tags or []] + ([name_contains] if name_contains else [])
    return pagination.paginate(s, stmt, _BY_FULL_NAME, page_size, page_token, listing="deployments",
                               filter_=filter_, build=DeploymentView.from_row)


def _load(s: Session, deployment_id: str) -> tuple[DeploymentRow, str]:
    """The deployment's row to change, and its flow's name."""
    found = s.execute(select(DeploymentRow, FlowRow.name).join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
                      .where(DeploymentRow.id == deployment_id)).first()
    if found is None:
        raise _not_found(deployment_id)
    return found[0], found[1]


def update(s: Session, deployment_id: str, inp: DeploymentInput, paths: list[str], now: dt.datetime | None = None,
           settings=None) -> DeploymentView:
    now = now or utcnow()
    row, flow_name = _load(s, deployment_id)
    if "flow_data" in paths:
        storage_blocks.check_exists(s, inp.storage_block_id)
    if "flow_runner" in paths:
        check_runner(inp.flow_runner_type, inp.flow_runner_config)
    if "parameter_schema" in paths:
        inp.parameter_schema = parameter_schemas.check_schema(inp.parameter_schema)
    if "name" in paths and inp.name != row.name:
        clash = s.scalar(
            select(DeploymentRow.id).where(DeploymentRow.flow_id == row.flow_id, DeploymentRow.name == inp.name)
        )
        if clash:
            raise AlreadyExistsError(f"deployment {flow_name}/{inp.name} already exists", reason="DEPLOYMENT_EXISTS")
    changed = _apply(row, inp, paths)
    _check_parameters(row, changed)
    row.updated = now
    return _settle(s, row, flow_name, changed, now, settings)


def delete_(s: Session, deployment_id: str) -> None:
    _load(s, deployment_id)
    scheduler.delete_future_runs(s, deployment_id)
    s.execute(delete(DeploymentRow).where(DeploymentRow.id == deployment_id))
