"""Flow runs: creation (idempotent by key), lookups, listing and state changes."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import and_, bindparam, delete, func, insert, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached

from flowdeck.server import deployments, flows, pagination
from flowdeck.core import states
from flowdeck.core.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, invalid_field
from flowdeck.server.models import DeploymentRow, FlowRow, FlowRunRow, FlowRunStateRow, new_id, utcnow
from flowdeck.server.names import readable_name
from flowdeck.server.sqlhelpers import has_all_tags


@dataclasses.dataclass
class StateInput:
    type: str
    name: str = ""
    message: str = ""

    def resolved_name(self) -> str:
        return self.name or states.DEFAULT_NAMES[self.type]


@dataclasses.dataclass
class FlowRunInput:
    flow_id: str = ""
    flow_name: str = ""
    deployment_id: str | None = None
    name: str = ""
    parameters: dict = dataclasses.field(default_factory=dict)
    tags: list = dataclasses.field(default_factory=list)
    state: StateInput | None = None
    expected_start_time: dt.datetime | None = None
    idempotency_key: str | None = None
    flow_runner_type: str = ""
    flow_runner_config: dict = dataclasses.field(default_factory=dict)
    auto_scheduled: bool = False


def _insert(s: Session):
    return pg_insert if s.bind.dialect.name == "postgresql" else sqlite_insert


def row_values(inp: FlowRunInput, flow_id: str, now: dt.datetime) -> dict:
    state = inp.state or StateInput(states.SCHEDULED)
    expected = inp.expected_start_time or now
    running = state.type == states.RUNNING
    return dict(
        id=new_id(),
        name=inp.name or readable_name(),
        flow_id=flow_id,
        deployment_id=inp.deployment_id,
        parameters=inp.parameters,
        tags=inp.tags,
        state_type=state.type,
        state_name=state.resolved_name(),
        state_message=state.message,
        state_timestamp=now,
        expected_start_time=expected,
        start_time=now if running else None,
        end_time=None,
        total_run_time=0.0,
        idempotency_key=inp.idempotency_key or None,
        flow_runner_type=inp.flow_runner_type,
        flow_runner_config=inp.flow_runner_config,
        auto_scheduled=inp.auto_scheduled,
        fencing_token=0,
        cancel_requested=False,
        created=now,
        updated=now,
    )


_RUNS = FlowRunRow.__table__
_STATES = FlowRunStateRow.__table__
_INSERT_RUN = insert(_RUNS)
_INSERT_STATE = insert(_STATES)
# Columns a new run leaves NULL (not in row_values): none has a default.
_NULL_ON_CREATE = ("lease_id", "agent_id", "agent_name", "lease_expires", "work_queue_id")
assert all(_RUNS.c[k].default is None and _RUNS.c[k].server_default is None for k in _NULL_ON_CREATE)
_DEPLOYMENT_FLOW = select(DeploymentRow.__table__.c.flow_id).where(
    DeploymentRow.__table__.c.id == bindparam("dep_id"))
_UTC = dt.timezone.utc


def _as_stored(value):
    """A datetime as it reads back from the database (aware UTC)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    return value


def _persistent(s: Session, values: dict) -> FlowRunRow:
    """The row just inserted with `values`, in the session as if loaded (no SELECT)."""
    row = FlowRunRow(**{k: _as_stored(v) for k, v in values.items()}, **dict.fromkeys(_NULL_ON_CREATE))
    make_transient_to_detached(row)
    s.add(row)
    return row


def create(s: Session, inp: FlowRunInput, now: dt.datetime | None = None) -> FlowRunRow:
    """Create a run; a known idempotency_key returns the existing run instead."""
    now = now or utcnow()
    if inp.flow_id:
        flow = flows.get(s, inp.flow_id)
    else:
        flow = flows.get_or_create(s, inp.flow_name)
    if inp.deployment_id:
        dep_flow_id = s.execute(_DEPLOYMENT_FLOW, {"dep_id": inp.deployment_id}).scalar()
        if dep_flow_id is None:
            raise NotFoundError(f"deployment {inp.deployment_id!r} not found", reason="DEPLOYMENT_NOT_FOUND")
        if dep_flow_id != flow.id:
            raise invalid_field(
                "flow_run.deployment_id", inp.deployment_id, f"belongs to another flow than {flow.name!r}"
            )
    return _create(s, inp, flow.id, flow.name, now)


def _create(s: Session, inp: FlowRunInput, flow_id: str, flow_name: str, now: dt.datetime) -> FlowRunRow:
    if inp.idempotency_key:
        existing = s.scalar(select(FlowRunRow).where(FlowRunRow.idempotency_key == inp.idempotency_key))
        if existing is not None:
            return _with_flow_name(s, existing)
    values = row_values(inp, flow_id, now)
    state_row = dict(flow_run_id=values["id"], type=values["state_type"], name=values["state_name"],
                     message=values["state_message"], timestamp=now)
    if not inp.idempotency_key:
        # The common case: two Core inserts, and the row we know we wrote.
        conn = s.connection()
        conn.execute(_INSERT_RUN, values)
        conn.execute(_INSERT_STATE, state_row)
        row = _persistent(s, values)
        row.flow_name = flow_name
        return row
    # ON CONFLICT DO NOTHING on the key: a racing create with the same key
    # leaves exactly one run, and both callers get it.
    stmt = _insert(s)(FlowRunRow).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    s.execute(stmt)
    row = s.scalar(select(FlowRunRow).where(FlowRunRow.idempotency_key == inp.idempotency_key))
    if row.id == values["id"]:
        s.connection().execute(_INSERT_STATE, state_row)
    row.flow_name = flow_name
    return row


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
) -> FlowRunRow:
    # One statement: the deployment's defaults and its flow (which exists: FK).
    dep = deployments.for_run(s, deployment_id=deployment_id, deployment_name=deployment_name)
    params = dict(dep.parameters or {})
    params.update(parameters or {})
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
        ),
        dep.flow_id,
        dep.flow_name,
        now or utcnow(),
    )


def _with_flow_name(s: Session, row: FlowRunRow) -> FlowRunRow:
    row.flow_name = s.scalar(select(FlowRow.name).where(FlowRow.id == row.flow_id))
    return row


def get(s: Session, run_id: str, *, history: bool = False, for_update: bool = False) -> FlowRunRow:
    stmt = select(FlowRunRow).where(FlowRunRow.id == run_id)
    if for_update and s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        raise NotFoundError(f"flow run {run_id!r} not found", reason="FLOW_RUN_NOT_FOUND")
    _with_flow_name(s, row)
    if history:
        row.history = list(
            s.scalars(
                select(FlowRunStateRow)
                .where(FlowRunStateRow.flow_run_id == run_id)
                .order_by(FlowRunStateRow.id)
            )
        )
    return row


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


def filtered(stmt, f: RunFilter, dialect: str):
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


def list_(s: Session, f: RunFilter, page_size: int, page_token: str):
    order = FlowRunRow.expected_start_time.desc() if f.descending else FlowRunRow.expected_start_time
    tiebreak = FlowRunRow.id.desc() if f.descending else FlowRunRow.id
    stmt = (
        select(FlowRunRow, FlowRow.name)
        .join(FlowRow, FlowRow.id == FlowRunRow.flow_id)
        .order_by(order, tiebreak)
    )
    stmt = filtered(stmt, f, s.bind.dialect.name)
    size = pagination.page_size(page_size)
    offset = pagination.decode(page_token)
    rows = s.execute(stmt.offset(offset).limit(size + 1)).all()
    out = []
    for row, fname in rows[:size]:
        row.flow_name = fname
        out.append(row)
    return out, (pagination.encode(offset + size) if len(rows) > size else "")


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
    return s.scalar(filtered(stmt, f, s.bind.dialect.name)) or 0


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
) -> FlowRunRow:
    now = now or utcnow()
    row = get(s, run_id, for_update=True)
    if fencing_token and not row.lease_id and row.state_type not in states.TERMINAL:
        # The lease was released or lapsed (the run went back to its queue):
        # the token no longer entitles anyone to report on this run.
        raise FailedPreconditionError(
            f"fencing token {fencing_token} for flow run {run_id} is no longer leased: the lease was lost",
            reason="STALE_FENCING_TOKEN",
        )
    if fencing_token and fencing_token != row.fencing_token:
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
    return row


def cancel(s: Session, run_id: str, now: dt.datetime | None = None) -> FlowRunRow:
    """SCHEDULED and un-held PENDING runs are cancelled at once; a held run is
    flagged and its agent told (it reports CANCELLED once the flow is stopped)."""
    now = now or utcnow()
    row = get(s, run_id, for_update=True)
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
    return row


def delete_(s: Session, run_id: str) -> None:
    get(s, run_id)
    s.execute(delete(FlowRunStateRow).where(FlowRunStateRow.flow_run_id == run_id))
    s.execute(delete(FlowRunRow).where(FlowRunRow.id == run_id))
