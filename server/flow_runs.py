"""Flow runs: creation (idempotent by key), lookups, listing and state changes."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import and_, bindparam, delete, func, insert, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flowdeck.server import deployments, flows, metrics, pagination, parameter_schemas
from flowdeck.core import states
from flowdeck.core.errors import FailedPreconditionError, NotFoundError, invalid_field
from flowdeck.server.models import FlowRow, FlowRunRow, FlowRunStateRow, utcnow
from flowdeck.server.run_inputs import FlowRunInput, StateInput, row_values
from flowdeck.server.sqlhelpers import has_all_tags
from flowdeck.server.views import FLOW_RUNS, FlowRunView, StateRecord

def _insert(s: Session):
    return pg_insert if s.bind.dialect.name == "postgresql" else sqlite_insert


_RUNS = FlowRunRow.__table__
_STATES = FlowRunStateRow.__table__
_INSERT_RUN = insert(_RUNS)
_INSERT_STATE = insert(_STATES)
_BY_KEY = FLOW_RUNS.where(_RUNS.c.idempotency_key == bindparam("key"))
_BY_ID = FLOW_RUNS.where(_RUNS.c.id == bindparam("run_id"))
_HISTORY = (select(_STATES.c.type, _STATES.c.name, _STATES.c.message, _STATES.c.timestamp)
            .where(_STATES.c.flow_run_id == bindparam("run_id")).order_by(_STATES.c.id))
_UTC = dt.timezone.utc


def _as_stored(value):
    """A datetime as it reads back from the database (aware UTC)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    return value


def create(s: Session, inp: FlowRunInput, now: dt.datetime | None = None) -> FlowRunView:
    """Create a run; a known idempotency_key returns the existing run instead."""
    now = now or utcnow()
    if inp.flow_id:
        flow = flows.get(s, inp.flow_id)
    else:
        flow = flows.get_or_create(s, inp.flow_name)
    if inp.deployment_id:
        dep = deployments.for_run(s, deployment_id=inp.deployment_id)
        if dep.flow_id != flow.id:
            raise invalid_field(
                "flow_run.deployment_id", inp.deployment_id, f"belongs to another flow than {flow.name!r}"
            )
        inp = dataclasses.replace(inp, parameters=_checked_parameters(dep, inp.parameters, "flow_run.parameters"))
    return _create(s, inp, flow.id, flow.name, now)


def _checked_parameters(dep: deployments.RunDefaults, parameters: dict | None, path: str) -> dict:
    """A run's parameters over its deployment's, checked against the deployment's schema."""
    merged = {**(dep.parameters or {}), **(parameters or {})}
    parameter_schemas.check(dep.parameter_schema, merged, path=path)
    return merged


def _by_key(s: Session, key: str) -> FlowRunView | None:
    row = s.execute(_BY_KEY, {"key": key}).first()
    return None if row is None else FlowRunView(*row)


def _create(s: Session, inp: FlowRunInput, flow_id: str, flow_name: str, now: dt.datetime) -> FlowRunView:
    if inp.idempotency_key:
        existing = _by_key(s, inp.idempotency_key)
        if existing is not None:
            return existing
    values = row_values(inp, flow_id, now)
    state_row = dict(flow_run_id=values["id"], type=values["state_type"], name=values["state_name"],
                     message=values["state_message"], timestamp=now)
    if not inp.idempotency_key:
        # The common case: two Core inserts, and the row we know we wrote.
        conn = s.connection()
        conn.execute(_INSERT_RUN, values)
        conn.execute(_INSERT_STATE, state_row)
        metrics.run_created(s, values["state_type"])
        return FlowRunView.from_values({k: _as_stored(v) for k, v in values.items()}, flow_name)
    # ON CONFLICT DO NOTHING on the key: a racing create with the same key
    # leaves exactly one run, and both callers get it.
    s.execute(_insert(s)(FlowRunRow).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"]))
    view = _by_key(s, inp.idempotency_key)
    if view.id == values["id"]:
        s.connection().execute(_INSERT_STATE, state_row)
        metrics.run_created(s, values["state_type"])
    return view


def create_from_deployment(
    s: Session,
    *,
    deployment_id: str = "",
    deployment_name: str = "",
    parameters: dict | None = None,
    tags: list[str] | None = None,
    expected_start_time: dt.datetime | None = None,
    idempotency_key: str | None = None,
    state: StateInput | None = None,
    name: str = "",
    now: dt.datetime | None = None,
    trace_context: dict | None = None,
) -> FlowRunView:
    # One statement: the deployment's defaults and its flow (which exists: FK).
    dep = deployments.for_run(s, deployment_id=deployment_id, deployment_name=deployment_name)
    params = _checked_parameters(dep, parameters, "parameters")
    all_tags = list(dict.fromkeys([*(dep.tags or []), *(tags or [])]))
    return _create(
        s,
        FlowRunInput(
            flow_id=dep.flow_id,
            deployment_id=dep.id,
            name=name,
            parameters=params,
            tags=all_tags,
            state=state,
            expected_start_time=expected_start_time,
            idempotency_key=idempotency_key,
            flow_runner_type=dep.flow_runner_type,
            flow_runner_config=dep.flow_runner_config,
            trace_context=trace_context,
        ),
        dep.flow_id,
        dep.flow_name,
        now or utcnow(),
    )


def _not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"flow run {run_id!r} not found", reason="FLOW_RUN_NOT_FOUND")


def get(s: Session, run_id: str, *, history: bool = False) -> FlowRunView:
    row = s.execute(_BY_ID, {"run_id": run_id}).first()
    if row is None:
        raise _not_found(run_id)
    view = FlowRunView(*row)
    if history:
        view = view._replace(history=tuple(StateRecord(*h) for h in s.execute(_HISTORY, {"run_id": run_id})))
    return view


def _load(s: Session, run_id: str) -> tuple[FlowRunRow, str]:
    """The run's row to change (locked on Postgres) and its flow's name."""
    stmt = (select(FlowRunRow, FlowRow.name).join(FlowRow, FlowRow.id == FlowRunRow.flow_id)
            .where(FlowRunRow.id == run_id))
    if s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=FlowRunRow)
    found = s.execute(stmt).first()
    if found is None:
        raise _not_found(run_id)
    return found[0], found[1]


@dataclasses.dataclass
class RunFilter:
    flow_id: str = ""
    flow_name: str = ""
    deployment_id: str = ""
    state_types: list[str] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    expected_start_after: dt.datetime | None = None
    expected_start_before: dt.datetime | None = None
    name: str = ""
    descending: bool = False
    state_names: list[str] = dataclasses.field(default_factory=list)
    # "" (every run), STARTED_OR_DUE or UPCOMING: where runs stand against `now`.
    window: str = ""
    now: dt.datetime | None = None


STARTED_OR_DUE = "STARTED_OR_DUE"
UPCOMING = "UPCOMING"


def _window(f: RunFilter):
    now = f.now or utcnow()
    upcoming = and_(FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.expected_start_time > now)
    return upcoming if f.window == UPCOMING else not_(upcoming)


def _filtered(stmt, f: RunFilter, dialect: str):
    if f.flow_id:
        stmt = stmt.where(FlowRunRow.flow_id == f.flow_id)
    if f.flow_name:
        stmt = stmt.where(FlowRow.name == f.flow_name)
    if f.deployment_id:
        stmt = stmt.where(FlowRunRow.deployment_id == f.deployment_id)
    if f.state_types or f.state_names:
        # Either list matches: `--state FAILED --state LATE` is "failed or late".
        by_state = []
        if f.state_types:
            by_state.append(FlowRunRow.state_type.in_(f.state_types))
        if f.state_names:
            by_state.append(FlowRunRow.state_name.in_(f.state_names))
        stmt = stmt.where(or_(*by_state))
    if f.window:
        stmt = stmt.where(_window(f))
    if f.tags:
        stmt = stmt.where(has_all_tags(FlowRunRow.tags, f.tags, dialect))
    if f.expected_start_after:
        stmt = stmt.where(FlowRunRow.expected_start_time >= f.expected_start_after)
    if f.expected_start_before:
        stmt = stmt.where(FlowRunRow.expected_start_time <= f.expected_start_before)
    if f.name:
        stmt = stmt.where(FlowRunRow.name == f.name)
    return stmt


def _by_start(descending: bool) -> pagination.Order:
    return pagination.Order(pagination.Key(_RUNS.c.expected_start_time, "expected_start_time", descending),
                            pagination.Key(_RUNS.c.id, "id", descending))


_SOONEST_FIRST = _by_start(False)
_LATEST_FIRST = _by_start(True)


def _view(row) -> FlowRunView:
    return FlowRunView(*row)


def list_(s: Session, f: RunFilter, page_size: int, page_token: str) -> tuple[list[FlowRunView], str]:
    dialect = s.bind.dialect.name
    if len(f.state_types) > 1 and not f.state_names:
        # One part per state type, each along its (state_type, ...) index, merged.
        stmt = [_filtered(FLOW_RUNS, dataclasses.replace(f, state_types=[t]), dialect) for t in f.state_types]
    else:
        stmt = _filtered(FLOW_RUNS, f, dialect)
    order = _LATEST_FIRST if f.descending else _SOONEST_FIRST
    return pagination.paginate(s, stmt, order, page_size, page_token, listing="flow_runs", filter_=f,
                               build=_view)


def upcoming(s: Session, deployment_id: str, page_size: int, page_token: str) -> tuple[list[FlowRunView], str]:
    """A deployment's SCHEDULED runs, soonest first (NOT_FOUND for an unknown deployment)."""
    deployments.get(s, deployment_id)
    stmt = FLOW_RUNS.where(_RUNS.c.deployment_id == deployment_id, _RUNS.c.state_type == states.SCHEDULED)
    return pagination.paginate(s, stmt, _SOONEST_FIRST, page_size, page_token, listing="upcoming_runs",
                               filter_=deployment_id, build=_view)


def total_size(s: Session, f: RunFilter, page: list, next_page_token: str, page_token: str) -> int:
    """How many runs match `f` in all (AIP-132 total_size), for the first page
    only: when it is the last page too, the page is the count; else one COUNT."""
    if page_token:
        return 0
    if not next_page_token:
        return len(page)
    stmt = select(func.count()).select_from(FlowRunRow)
    if f.flow_name:
        stmt = stmt.join(FlowRow, FlowRow.id == FlowRunRow.flow_id)
    return s.scalar(_filtered(stmt, f, s.bind.dialect.name)) or 0


def apply_state(s: Session, row: FlowRunRow, state: StateInput, now: dt.datetime) -> None:
    """Record a state change (no rules checked: callers decide)."""
    if state.type == states.RUNNING and row.start_time is None:
        row.start_time = now
    if state.type in states.TERMINAL:
        row.end_time = now
        if row.start_time is not None:
            row.total_run_time = max(0.0, (now - row.start_time).total_seconds())
        row.lease_id = None
        row.lease_expires = None
    if state.type == states.SCHEDULED:
        row.lease_id = None
        row.lease_expires = None
        row.agent_id = None
        row.agent_name = None
    metrics.state_entered(s, state.type, row.work_queue_id)
    row.state_type = state.type
    row.state_name = state.resolved_name()
    row.state_message = state.message
    row.state_timestamp = now
    row.updated = now
    s.add(FlowRunStateRow(flow_run_id=row.id, type=row.state_type, name=row.state_name,
                          message=row.state_message, timestamp=now))


def set_state(
    s: Session,
    run_id: str,
    state: StateInput,
    *,
    force: bool = False,
    fencing_token: int = 0,
    now: dt.datetime | None = None,
) -> FlowRunView:
    now = now or utcnow()
    row, flow_name = _load(s, run_id)
    if fencing_token and not row.lease_id and row.state_type not in states.TERMINAL:
        # The lease was released or lapsed (the run went back to its queue):
        # the token no longer entitles anyone to report on this run.
        metrics.FENCED_REPORTS.inc()
        raise FailedPreconditionError(
            f"fencing token {fencing_token} for flow run {run_id} is no longer leased: the lease was lost",
            reason="STALE_FENCING_TOKEN",
        )
    if fencing_token and fencing_token != row.fencing_token:
        metrics.FENCED_REPORTS.inc()
        raise FailedPreconditionError(
            f"stale fencing token {fencing_token} for flow run {run_id} (current {row.fencing_token}):"
            " the lease was lost",
            reason="STALE_FENCING_TOKEN",
        )
    if not force:
        why = states.refusal(row.state_type, state.type)
        if why:
            raise FailedPreconditionError(why, reason="ILLEGAL_TRANSITION",
                                     current=row.state_type, requested=state.type)
    apply_state(s, row, state, now)
    s.flush()
    return FlowRunView.of(row, flow_name)


def cancel(s: Session, run_id: str, now: dt.datetime | None = None) -> FlowRunView:
    """SCHEDULED and un-held PENDING runs are cancelled at once; a held run is
    flagged and its agent told (it reports CANCELLED once the flow is stopped)."""
    now = now or utcnow()
    row, flow_name = _load(s, run_id)
    if row.state_type in states.TERMINAL:
        raise FailedPreconditionError(
            f"flow run {run_id} is already {row.state_type}", reason="ILLEGAL_TRANSITION"
        )
    if row.lease_id and row.state_type in (states.PENDING, states.RUNNING):
        row.cancel_requested = True
        row.updated = now
    else:
        apply_state(s, row, StateInput(states.CANCELLED, "Cancelled", "cancelled by request"), now)
    s.flush()
    return FlowRunView.of(row, flow_name)


def delete_(s: Session, run_id: str) -> None:
    s.execute(delete(FlowRunStateRow).where(FlowRunStateRow.flow_run_id == run_id))
    if not s.execute(delete(FlowRunRow).where(FlowRunRow.id == run_id)).rowcount:
        raise _not_found(run_id)
